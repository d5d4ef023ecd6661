# ww-scheduler: `make run` starts a local cluster, `make test` runs the tests.
# Both create and use .venv from the pinned requirements.txt.

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell sha256sum requirements.txt | cut -c1-12)
WORKERS ?= 2
# Test processes (pytest-xdist), each test file whole on one of them: most
# tests wait on real processes (a gateway's start, a fire time, a restart),
# so three share two cores well (the suite: ~12 min alone, ~6 min so).
TEST_JOBS ?= 3
HTTP ?= 127.0.0.1:8080

.PHONY: venv run test lint wasm clean

$(STAMP): requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

venv: $(STAMP)

run: venv
	$(PY) manage.py migrate --noinput -v 0
	$(PY) manage.py runcluster --workers $(WORKERS) --http $(HTTP)

test: venv
	$(PY) -m pytest -n $(TEST_JOBS) --dist loadfile

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports
	$(VENV)/bin/mypy

wasm: venv
	$(PY) examples/build.py

clean:
	rm -rf $(VENV) var
