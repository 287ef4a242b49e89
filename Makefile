# Two commands do everything on a fresh machine:  make demo   and   make test
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.edgekd-installed
# Debian packages: the Fashion-MNIST source of the bundled data (tests rebuild it to check provenance);
# shellcheck for the CI and Docker shell scripts (make lint, tests/ci); qemu-user-static for the Arm emulator;
# openssh-server/-client for the stand-in ssh board the ssh runner's tests start (tests/bench/conftest.py).
DEB_PACKAGES := dataset-fashion-mnist curl shellcheck qemu-user-static binfmt-support openssh-server openssh-client chromium
TARGET ?= cortex-a76
# 15 ms: fitted to published Cortex-A76 figures, the bundled teacher is predicted at ~21 ms int8, so a
# 30 ms budget would need no pruning (a larger example is planned; targets/measurements/README.md)
BUDGET ?= 15
PYTEST_ARGS ?=

export ORT_DISABLE_TELEMETRY := 1
export NNCF_CI := 1
export OPENVINO_TELEMETRY_DISABLE := 1

.PHONY: setup demo test lint format clean debian emulator

setup: debian $(STAMP)

debian:
	@missing=""; for p in $(DEB_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  SUDO=""; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing; \
	fi

$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || python3.11 -m venv $(VENV) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# torch first and pinned: the local CPU wheel; a resolver left alone would pull a CUDA build.
	$(PY) -m pip install -q torch==2.13.0
	# exact tested versions: the resolver backtracks for many minutes over the extras' ranges otherwise
	$(PY) -m pip install -q -c constraints.txt -e '.[all,dev]'
	touch $(STAMP)

demo: setup
	$(VENV)/bin/edgekd build --target $(TARGET) --budget-ms $(BUDGET)

# The Arm emulator (arm64 Python + LiteRT under qemu) for `--runner qemu` and the emulator tests; instant once built.
emulator: setup
	$(VENV)/bin/edgekd emulator setup

test: setup emulator
	$(VENV)/bin/pytest $(PYTEST_ARGS)

lint: setup
	$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports
	$(VENV)/bin/hadolint -t style docker/Dockerfile docker/Dockerfile.arm64-runner
	shellcheck ci/*.sh docker/*.sh

format: setup
	$(VENV)/bin/ruff format . && $(VENV)/bin/ruff check --fix .

clean:
	rm -rf build .pytest_cache
