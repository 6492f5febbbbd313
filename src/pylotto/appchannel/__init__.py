"""Calls from the sidecar to its own app.

``base`` defines the pub/sub delivery contract (:class:`~pylotto.appchannel.base.AppChannel`:
list the app's subscriptions, deliver one event, get SUCCESS / RETRY / DROP); each transport
implements it: ``layotto_grpc`` (Layotto ``AppCallback`` gRPC). ``http`` sends service
invocations to the app's HTTP server.
"""
