# Everything a fresh Debian machine with Python 3.11 needs, then the demo or the tests.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: setup demo test lint bench system-deps clean

# System packages: python3-venv for the virtual environment; pcscd, vpcd, OpenSC and
# libpcsclite-dev (for pyscard) for the PC/SC interoperability tests. Installed only
# when we are root with apt-get; otherwise those tests skip (or fail under CI) and say what is missing.
system-deps:
	@sh scripts/system-deps.sh

$(STAMP): pyproject.toml jpki/_crlscan.c scripts/system-deps.sh
	@$(MAKE) --no-print-directory system-deps
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	@if [ -e /usr/include/PCSC/winscard.h ]; then $(PY) -m pip install -q -e '.[dev,pcsc]'; \
	 else echo "note: libpcsclite-dev missing; installing without pyscard"; fi
	touch $(STAMP)

setup: $(STAMP)

demo: setup
	$(VENV)/bin/mynacard demo --out demo-out

test: lint
	$(PY) -m pytest -n 2 --dist loadgroup

# ruff, and the import contracts of the layers (pyproject.toml [tool.importlinter]).
lint: setup
	$(PY) -m ruff check .
	$(VENV)/bin/lint-imports

bench: setup
	$(PY) bench/run.py

clean:
	rm -rf $(VENV) demo-out .pytest_cache .hypothesis
