"""Name resolution: which sidecars serve an app id (for invocation between sidecars).

Configured once per sidecar (``name_resolution`` in ``pylotto.yaml``):

- ``static``: a table in the config, app id → addresses of its sidecars' gRPC ports.
- ``dns``: the app id is a DNS name (Kubernetes services); every address is a sidecar.
- ``kubernetes``: Dapr's cluster form, ``<app-id>-dapr.<namespace>.svc.<clusterDomain>``; every
  address of the name is a sidecar (the default of ``pylotto run --mode kubernetes``).
- ``redis``: a registry in Redis; each sidecar registers its own address under its app id with
  a heartbeat, and entries not refreshed within ``ttl`` drop out (a dead sidecar leaves the
  rotation by itself).
"""
