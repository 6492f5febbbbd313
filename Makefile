# pylotto — developer entry points. `make run` and `make test` are the README's two commands.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python

LOCK := requirements/lock.txt

.PHONY: run test lint unit e2e protos clean bench bench-full wheels lock

# The sidecar and the SDK (clients/python) both editable, at the lock file's exact versions.
$(VENV)/.installed: pyproject.toml clients/python/pyproject.toml $(LOCK)
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c $(LOCK) -e clients/python -e '.[dev]'
	touch $@

run: $(VENV)/.installed ## start the sidecar on embedded components and show it answering
	PATH=$(CURDIR)/$(VENV)/bin:$$PATH scripts/run-demo.sh

test: $(VENV)/.installed lint ## lint, type-check, start the servers, run every test (unit, integration, conformance, e2e)
	scripts/start-services.sh
	$(PY) -m pytest -q --durations=40  # the slowest tests listed: keep CI under 45 min

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check src clients tests examples bench
	$(VENV)/bin/mypy

unit: $(VENV)/.installed ## the tests that need no server (tests/integration: one real server each)
	$(PY) -m pytest -q tests/unit

bench: $(VENV)/.installed ## quick benchmark suite, then the gRPC floor (~6 min): bench/results/*.json + docs/performance.md
	scripts/start-services.sh
	$(PY) -m bench --quick
	$(PY) -m bench.grpc_stacks --quick --out bench/results/grpc-stacks-latest.json

bench-full: $(VENV)/.installed ## full benchmark suite and gRPC floor (5 rounds of 5 s per path, ~17 min)
	scripts/start-services.sh
	$(PY) -m bench
	$(PY) -m bench.grpc_stacks --out bench/results/grpc-stacks-latest.json

protos: $(VENV)/.installed ## regenerate src/pylotto/proto and clients/python/src/pylotto/proto from their .proto files
	PYTHON=$(PY) scripts/gen_protos.sh

wheels: $(VENV)/.installed ## build dist/pylotto-*.whl and dist/pylotto_client-*.whl (docs/packaging.md)
	PYTHON=$(PY) deploy/build-wheels.sh dist

lock: ## re-resolve pyproject.toml's ranges into requirements/lock.txt (a fresh venv, ~6 min)
	PYTHON=$(PYTHON) scripts/lock.sh

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache build dist clients/python/build
