# Everything installs into .venv from uv.lock; only python3.11 and make are assumed.
PYTHON ?= python3.11
UV_VERSION := 0.13.8
TOOLS := .venv-tools
UV := $(TOOLS)/bin/uv
VENV := .venv
STAMP := $(VENV)/.installed

.PHONY: install demo test test-fast lint format bench bench-tools up clean

install: $(STAMP)

$(UV):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

$(STAMP): $(UV) pyproject.toml uv.lock
	UV_PROJECT_ENVIRONMENT=$(VENV) $(UV) sync --frozen --python $(PYTHON)
	touch $(STAMP)

demo: install
	$(VENV)/bin/boltit demo

test: install
	$(VENV)/bin/python -m pytest -p no:cacheprovider

# The inner loop: unit tests only: no trained model, MLflow store, PostgreSQL, S3, real data.
FAST := not slow and not postgres and not real_data and not s3 and not integration
test-fast: install
	$(VENV)/bin/python -m pytest -p no:cacheprovider -q -m "$(FAST)"

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

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
