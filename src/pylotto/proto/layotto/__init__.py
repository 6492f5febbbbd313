"""Layotto runtime API (package spec.proto.runtime.v1)."""
