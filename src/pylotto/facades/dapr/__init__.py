"""Dapr's APIs: gRPC service ``dapr.proto.runtime.v1.Dapr`` and the HTTP API v1.0.

Both are served from the same capability layer as the Layotto facade; the message classes come
from the ``dapr`` package's generated stubs (:mod:`pylotto.facades.dapr.messages`).
"""
