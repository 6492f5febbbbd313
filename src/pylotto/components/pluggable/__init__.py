"""Pluggable components: any process serving a component over gRPC on a Unix socket.

The sidecar scans a socket folder (``pluggable.socket_folder`` in pylotto.yaml, default
``/tmp/dapr-components-sockets``), asks each ``<name>.sock`` which services it implements (gRPC
reflection) and registers ``state.<name>``, ``pubsub.<name>``, ``lock.<name>``,
``sequencer.<name>``, ``bindings.<name>`` accordingly. The types ``state.pluggable`` (etc.) take
the socket from the ``socketPath`` metadata key instead. See docs/pluggable.md.
"""
