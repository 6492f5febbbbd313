"""Dapr virtual actors (docs/design/actors.md). Being built: see api.py for the shared
vocabulary."""
