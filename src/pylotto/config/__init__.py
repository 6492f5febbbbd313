"""Configuration: pylotto.yaml, Layotto JSON and Dapr manifests -> one RuntimeConfig."""
