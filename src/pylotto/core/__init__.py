"""Core: the error table, shared types, metadata decoding, the component registry."""
