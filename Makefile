# Everything installs into .venv from uv.lock; only python3.11 and make are assumed.
PYTHON ?= python3.11
UV_VERSION := 0.13.8
TOOLS := .venv-tools
UV := $(TOOLS)/bin/uv
VENV := .venv
STAMP := $(VENV)/.installed

.PHONY: install demo test test-fast lint format bench bench-tools up clean system-deps

install: $(STAMP)

$(UV):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

$(STAMP): $(UV) pyproject.toml uv.lock
	UV_PROJECT_ENVIRONMENT=$(VENV) $(UV) sync --frozen --python $(PYTHON)
	touch $(STAMP)

demo: install
	$(VENV)/bin/boltit demo

# The whole suite, what CI runs, on every core (pytest-xdist; `make test WORKERS=0` runs it in
# one process). A test file runs on one worker, so a module's shared fixtures (a trained model,
# a running service) are built once; the session's trained models are shared by the workers
# (tests/once.py). Failures are reported in full at the end, as in a serial run.
WORKERS ?= auto
PARALLEL := -n $(WORKERS) --dist loadfile
test: install system-deps
	$(VENV)/bin/python -m pytest -p no:cacheprovider $(PARALLEL)

# The inner loop: unit tests (no trained model, MLflow store, PostgreSQL, S3, process), minus
# the slow ones and those on the real data. In one process: a worker's imports and collection
# cost more than its half of these tests.
FAST := unit and not slow and not real_data
test-fast: install
	$(VENV)/bin/python -m pytest -p no:cacheprovider -q -m "$(FAST)"

# One kind each (tests/README.md): unit, integration (real stores in process), e2e (processes).
.PHONY: test-unit test-integration test-e2e
test-unit: install
	$(VENV)/bin/python -m pytest -p no:cacheprovider -q -m unit

test-integration: install system-deps
	$(VENV)/bin/python -m pytest -p no:cacheprovider -q $(PARALLEL) -m integration

test-e2e: install system-deps
	$(VENV)/bin/python -m pytest -p no:cacheprovider -q $(PARALLEL) -m e2e

# What some tests need from the system, installed from Debian only when absent: Chromium for
# the browser tests (tests/browser; Playwright drives it, it never downloads a browser) and a
# Java 17 runtime for Spark. Without root or apt-get this says why and goes on: those tests
# then skip, naming what is missing. `make system-deps CHROMIUM=... JAVA=...` checks others.
CHROMIUM ?= chromium
JAVA ?= java
system-deps:
	@missing=""; \
	if ! command -v $(CHROMIUM) >/dev/null 2>&1 && ! [ -x /usr/bin/$(CHROMIUM) ]; then \
		missing=" chromium"; fi; \
	if ! $(JAVA) -version >/dev/null 2>&1; then missing="$$missing openjdk-17-jre-headless"; fi; \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ]; then as_root=""; \
	elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then as_root="sudo -n"; \
	else echo "system-deps: not root and no password-less sudo, so not installing:$$missing;" \
		"the tests that need it skip"; exit 0; fi; \
	if ! command -v apt-get >/dev/null 2>&1; then \
		echo "system-deps: no apt-get (not Debian?), so not installing:$$missing;" \
			"the tests that need it skip"; exit 0; fi; \
	echo "system-deps: installing from Debian:$$missing"; \
	if $$as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
		$$as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; then :; \
	else echo "system-deps: apt-get failed (above), so not installed:$$missing;" \
		"the tests that need it skip"; fi

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

format: install
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

bench: install bench-tools
	$(VENV)/bin/python -m bench

# wrk (Debian's package) loads the services in bench/serve_bench.py.
bench-tools:
	@command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk; }

up: install
	$(VENV)/bin/boltit up

clean:
	rm -rf $(VENV) $(TOOLS) .boltit
