# Two commands a newcomer needs; each creates the environment from nothing on first use.
#   make reproduce   execute every notebook with papermill (paper profile) -> figures/
#   make test        unit tests + every notebook in the smoke profile
# Everything installs from requirements.lock (exact versions); `make lock` refreshes it.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PROFILE ?= paper
LOCK := requirements.lock
# On Linux, PyPI's torch wheel is the CUDA build (several GB). For the CPU build, point this at
# PyTorch's CPU wheel index: make test TORCH_INDEX=https://download.pytorch.org/whl/cpu
TORCH_INDEX ?=
# The uv release that writes the lock (a maintained resolver that writes a universal lock).
UV_VERSION := 0.13.9

.PHONY: install test reproduce smoke lab lock clean

install: $(VENV)/.installed

# torch first, at the lock's version, on its own: a bare torch requirement on a machine without
# it pulls a CUDA build. Then the project, every package constrained to the lock.
$(VENV)/.installed: pyproject.toml $(LOCK)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -c $(LOCK) torch $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX))
	$(BIN)/python -m pip install -c $(LOCK) -e ".[dev]"
	touch $@

test: install
	$(BIN)/python -m pytest

reproduce: install
	$(BIN)/nvrepro reproduce --profile $(PROFILE)

smoke: install
	$(BIN)/nvrepro reproduce --profile smoke

lab: install
	$(BIN)/jupyter lab notebooks/

# Resolve pyproject.toml into the lock for Python 3.11+ on every platform, keeping every pin
# that still fits (a new dependency adds only what it needs); UPGRADE=1 moves every package to
# the newest release pyproject.toml admits. torch stays at the lock's pin: change it there on purpose.
lock:
	$(PYTHON) -m venv build/uv
	build/uv/bin/python -m pip install --quiet "uv==$(UV_VERSION)"
	grep -E '^torch==' $(LOCK) > build/torch-pin.txt
	build/uv/bin/uv pip compile pyproject.toml --extra dev --universal --python-version 3.11 \
	    --constraint build/torch-pin.txt $(if $(UPGRADE),--upgrade) --custom-compile-command "make lock" \
	    --quiet --output-file $(LOCK)

clean:
	rm -rf build lightning_logs .pytest_cache
