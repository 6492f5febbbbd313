"""Which app channel delivers events to the app, from how the app is configured:

- ``app.grpc_callback_port``: Layotto's AppCallback gRPC (takes precedence);
- ``app.port`` with ``app.protocol: grpc``: Dapr's AppCallback gRPC;
- ``app.port`` (``protocol: http``): Dapr's HTTP app channel (``/dapr/subscribe``);
- neither: no app channel (subscriber streams still work).
"""

from __future__ import annotations

from pylotto.appchannel.base import AppChannel
from pylotto.capabilities.base import AppSettings

APP_HOST = "127.0.0.1"


def pubsub_channel(app: AppSettings) -> AppChannel | None:
    if app.grpc_callback_port:
        from pylotto.appchannel.layotto_grpc import LayottoGrpcAppChannel

        return LayottoGrpcAppChannel(app.grpc_callback_host, app.grpc_callback_port,
                                     api_token=app.api_token)
    if app.http_port and app.protocol == "grpc":
        from pylotto.appchannel.dapr_grpc import DaprGrpcAppChannel

        return DaprGrpcAppChannel(APP_HOST, app.http_port, api_token=app.api_token)
    if app.http_port:
        from pylotto.appchannel.dapr_http import DaprHttpAppChannel
        from pylotto.appchannel.http import HttpAppChannel

        return DaprHttpAppChannel(HttpAppChannel(APP_HOST, app.http_port,
                                                 api_token=app.api_token))
    return None
