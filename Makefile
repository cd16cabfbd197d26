# Quick start: `make demo` (RLKD on the embedded digits data), `make test` (the whole test suite).
# Both create .venv first when it is missing (tools/setup_env.sh; the first run compiles mmcv).
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.rlkd_mm_ready
SETUP_INPUTS := tools/setup_env.sh setup.py $(wildcard requirements/*.txt)

.PHONY: setup demo test test-fast lint format bench results clean

$(STAMP): $(SETUP_INPUTS)
	bash tools/setup_env.sh

setup: $(STAMP)

demo: $(STAMP)
	$(PY) tools/demo.py

# One thread per process: the tests use tiny models (and start training subprocesses), where
# more threads only add contention on a 2-core machine.
test: $(STAMP)
	OMP_NUM_THREADS=1 $(PY) -m pytest -q -ra tests

test-fast: $(STAMP)
	OMP_NUM_THREADS=1 $(PY) -m pytest -q -ra -m "not slow" tests

lint: $(STAMP)
	$(VENV)/bin/ruff check rlkd_mm tools tests configs setup.py
	$(VENV)/bin/ruff format --check rlkd_mm tools tests setup.py

format: $(STAMP)
	$(VENV)/bin/ruff check --fix rlkd_mm tools tests configs setup.py
	$(VENV)/bin/ruff format rlkd_mm tools tests setup.py

clean:
	rm -rf work_dirs data .pytest_cache
