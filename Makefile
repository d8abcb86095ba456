# Two commands do all the set-up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
# Processes that run the test suite (pytest-xdist); each test runs in one of them, and a
# process that runs out of tests takes some of the other's (worksteal: no idle tail).
TEST_WORKERS ?= 2
PY := $(VENV)/bin/python
export TF_CPP_MIN_LOG_LEVEL ?= 2
export PYTHONUNBUFFERED := 1

.PHONY: demo test bench lint docs datasets backends clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

# One stamp per install flavour; both re-run when setup.py changes.
$(VENV)/.installed: setup.py | $(PY)
	$(PY) -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: setup.py | $(PY)
	$(PY) -m pip install --quiet -e ".[test]"
	touch $@ $(VENV)/.installed

$(VENV)/.installed-docs: setup.py | $(PY)
	$(PY) -m pip install --quiet -e ".[docs]"
	touch $@

demo: $(VENV)/.installed
	$(PY) examples/quickstart.py

# Best effort: Debian's Fashion-MNIST IDX files (kn.data.load("fashion_mnist") falls back to
# tensorflow-datasets without them) and its fortunes (an English text corpus,
# kn.data.FORTUNES_DIR); the tests that read them skip without them.
datasets:
	@for pair in dataset-fashion-mnist:/usr/share/datasets/fashion-mnist fortunes:/usr/share/games/fortunes; do \
	  pkg=$${pair%%:*}; dir=$${pair#*:}; \
	  if [ ! -d $$dir ] && command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
	    apt-get install -y -qq $$pkg >/dev/null 2>&1 || \
	    { apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq $$pkg >/dev/null 2>&1; } || \
	    echo "note: could not install $$pkg; its tests will skip"; \
	  fi; \
	done

# Best effort: a CPU build of PyTorch, for the torch backend's smoke test (it skips without
# torch). PyPI's torch wheels for Linux are CUDA builds of several GB; a "+cpu" version
# matches only a CPU build: a local wheel (pip's find-links), or the index
# https://download.pytorch.org/whl/cpu given as PIP_EXTRA_INDEX_URL.
TORCH_CPU ?= torch==2.13.0+cpu
backends: $(VENV)/.installed-test
	@$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install --quiet "$(TORCH_CPU)" \
	  >/dev/null 2>&1 || echo "note: no CPU build of torch ($(TORCH_CPU)); its tests will skip"

test: $(VENV)/.installed-test datasets backends
	$(PY) -m pytest -q -n $(TEST_WORKERS) --dist worksteal --durations=20

bench: $(VENV)/.installed
	@set -e; for b in benchmarks/*.py; do \
	  [ -e "$$b" ] || { echo "no benchmark scripts yet"; break; }; \
	  echo "== $$b"; $(PY) $$b; \
	done

lint: $(VENV)/.installed-test
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

docs: $(VENV)/.installed-docs
	$(VENV)/bin/mkdocs build --strict

clean:
	rm -rf $(VENV) kerasnas_runs site *.egg-info
