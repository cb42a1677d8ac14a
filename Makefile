# posenas: the README's commands. `make test` and `make demo` set everything up on a fresh clone.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
DEMO_DIR ?= runs/demo

.PHONY: setup test test-fast test-all demo bench clean

setup: $(STAMP)

$(STAMP): setup.cfg pyproject.toml
	@command -v dot >/dev/null 2>&1 || { \
	  echo "installing Debian's graphviz (dot)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq graphviz >/dev/null; }
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "installing Debian's chromium (headless, for the NNI web UI test)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }
	@test -x /usr/sbin/sshd || { \
	  echo "installing Debian's openssh-server (the remote training service test)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openssh-server >/dev/null; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# torch first, pinned: the CPU build on our machines (an unpinned torch pulls a CUDA build)
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[dev]'
	# xtcocotools' PyPI wheel is built against NumPy 1 and fails to import beside NumPy 2
	# ("numpy.dtype size changed"): build it here against the installed NumPy
	$(PY) -m pip install -q --no-build-isolation --no-binary xtcocotools --force-reinstall --no-deps xtcocotools==1.14.3
	# ENAS (NNI 3.0) needs tianshou 0.4.11; its protobuf pin conflicts with onnx, so no deps
	$(PY) -m pip install -q --no-deps tianshou==0.4.11
	# gym prints a 3-line deprecation notice on every import (NNI imports it) from gym_notices
	$(PY) -m pip uninstall -q -y gym_notices
	touch $(STAMP)

# -n auto: one pytest-xdist worker per core, one thread each (tests/conftest.py); the tests
# that share a module's trained fixture stay on one worker (--dist loadgroup)
PYTEST := $(PY) -m pytest -q -n auto --dist loadgroup

test: setup
	$(PYTEST)

# the edit loop: unit tests only (not the e2e ones that run the real commands)
test-fast: setup
	$(PYTEST) -m "not e2e"

demo: setup
	$(PY) -m trainers.demo --out $(DEMO_DIR)

bench: setup
	$(PY) -m benchmarks.data_pipeline

clean:
	rm -rf $(VENV) runs *.egg-info .pytest_cache
