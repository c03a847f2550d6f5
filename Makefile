# One target per habit. Each creates .venv and installs what it needs on a fresh machine.
PYTHON ?= python3.11
TORCH ?= torch==2.13.0
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(subst =,-,$(TORCH))
export HF_HUB_OFFLINE := 1

.PHONY: run test check bench venv demo clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet "$(TORCH)"
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

venv: $(STAMP)

run: $(STAMP)
	$(VENV)/bin/kinema serve

demo: $(STAMP)
	$(VENV)/bin/kinema generate "a red circle moving right on a navy background" -o out/demo.mp4

test: $(STAMP)
	test -d studio/node_modules || npm --prefix studio ci --no-audit --no-fund --loglevel=error
	npm --prefix studio test
	$(PY) -m pytest -q

check: $(STAMP)
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/ruff format --check src tests benchmarks
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports
	studio/check-fresh

bench: $(STAMP)
	$(PY) -m benchmarks

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
