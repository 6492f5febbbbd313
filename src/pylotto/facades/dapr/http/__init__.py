"""Dapr's HTTP API v1.0 (``/v1.0/...`` on 127.0.0.1:3500 by default)."""

from pylotto.facades.dapr.http.app import build_app

__all__ = ["build_app"]
