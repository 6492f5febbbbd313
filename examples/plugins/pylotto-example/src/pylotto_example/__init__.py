"""pylotto-example: a plugin package for pylotto.

- component type ``state.json-file`` (:mod:`pylotto_example.json_file_store`): a state store
  keeping every item in one JSON file, rewritten atomically on each write;
- API plugin ``counter`` (:mod:`pylotto_example.counter`): the gRPC service
  ``pylotto_example.v1.Counter`` (and an HTTP route on the Dapr HTTP API), built on the
  sidecar's sequencer and state capabilities.

Both are declared as entry points in this package's pyproject.toml; ``pip install`` it next
to pylotto and they are available, with no change to pylotto.
"""

__version__ = "0.1.0"
