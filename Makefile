# `make test` is the one command that sets up everything the tests need on a fresh
# machine (a venv with the dev tools) and runs lint, types and the whole suite.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: test lint typecheck pytest upstream-oomd dbus-daemon e2e clean

test: lint typecheck pytest

# The example third-party plugin package (docs/writing_a_plugin.md) is installed too:
# its entry points are what tests/test_plugin_*.py discover, and its tests run in pytest.
EXAMPLE := examples/oomd-example-plugins

$(BIN)/.installed: pyproject.toml $(EXAMPLE)/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	$(BIN)/pip install --quiet --no-deps -e $(EXAMPLE)
	touch $@

lint: $(BIN)/.installed
	$(BIN)/ruff check src tests tools examples bench
	$(BIN)/ruff format --check src tests tools examples bench

typecheck: $(BIN)/.installed
	$(BIN)/mypy

pytest: $(BIN)/.installed upstream-oomd dbus-daemon
	$(BIN)/pytest

# Debian's build of upstream oomd (0.5.0) is the oracle of tests/differential:
# installed with apt-get when missing (needs root), else those tests skip.
upstream-oomd:
	@sh .ci/install-upstream-oomd

# A private dbus-daemon is the real bus of the systemd_restart tests (jeepney path):
# installed with apt-get when missing (needs root), else those tests skip.
dbus-daemon:
	@sh .ci/install-dbus-daemon

# Only the real-kernel end-to-end suite (part of `pytest` too): boots the oomdvm guest
# (tools/vm, cached in ~/.cache/oomd-vm) and runs tests/e2e in it. docs/testing.md.
e2e: $(BIN)/.installed
	$(BIN)/pytest -s tests/test_e2e_vm.py

clean:
	rm -rf $(VENV) build *.egg-info .mypy_cache .ruff_cache .pytest_cache
