# Two commands a newcomer needs; each creates the environment from nothing on first use.
#   make reproduce   execute every notebook with papermill (paper profile) -> figures/
#   make test        unit tests + every notebook in the smoke profile
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PROFILE ?= paper

.PHONY: install test reproduce smoke lab clean

install: $(VENV)/.installed

# torch first, pinned: a bare torch requirement on a machine without it pulls a CUDA build.
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install torch==2.13.0
	$(BIN)/python -m pip install -e ".[dev]"
	touch $@

test: install
	$(BIN)/python -m pytest

reproduce: install
	$(BIN)/nvrepro reproduce --profile $(PROFILE)

smoke: install
	$(BIN)/nvrepro reproduce --profile smoke

lab: install
	$(BIN)/jupyter lab notebooks/

clean:
	rm -rf build lightning_logs .pytest_cache
