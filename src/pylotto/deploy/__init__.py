"""Deployment on Kubernetes: the sidecar injector (a mutating admission webhook).

- :mod:`pylotto.deploy.annotations`: a pod's Dapr, Layotto and pylotto annotations → the
  sidecar it asks for;
- :mod:`pylotto.deploy.patch`: that sidecar → the JSON patch that adds it to the pod;
- :mod:`pylotto.deploy.injector`: the HTTPS server answering the API server's AdmissionReview
  requests (``pylotto injector``).

Nothing here imports the runtime: the injector is a small program of its own that shares the
image and the command with the sidecar.
"""
