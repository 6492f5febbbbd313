"""The capability layer: every rule of every API, written once and shared by all facades."""
