"""secretstores components: where secrets are read from."""

ALIASES: dict[str, str] = {
    "local.file": "pylotto.components.secretstores.local_file:LocalFileSecretStore",
    "local.env": "pylotto.components.secretstores.local_env:LocalEnvSecretStore",
}
