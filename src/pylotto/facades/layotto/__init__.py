"""The Layotto runtime API: gRPC service ``spec.proto.runtime.v1.Runtime``.

One mixin per capability (``state.py``, ``pubsub.py``...), assembled in ``servicer.py``.
"""
