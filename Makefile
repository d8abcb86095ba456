# Two commands do all the set-up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
export TF_CPP_MIN_LOG_LEVEL ?= 2
export PYTHONUNBUFFERED := 1

.PHONY: demo test bench lint clean

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

demo: $(VENV)/.installed
	$(PY) examples/quickstart.py

test: $(VENV)/.installed-test
	$(PY) -m pytest -q

bench: $(VENV)/.installed
	@ls benchmarks/*.py >/dev/null 2>&1 || { echo "no benchmarks yet"; exit 0; }
	@for b in benchmarks/*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

lint: $(VENV)/.installed-test
	$(VENV)/bin/ruff check kerasnas tests examples benchmarks setup.py

clean:
	rm -rf $(VENV) kerasnas_runs *.egg-info
