# Two commands for a fresh clone: `make run` and `make test`.
# The venv is reused until pyproject.toml changes (the stamp file depends on it).

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export ANONYMIZED_TELEMETRY := False

.PHONY: install index run test eval bench clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info[:2] == (3, 11), f"Python 3.11 is required, found {sys.version.split()[0]}"'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

index: install
	$(BIN)/backpain index

run: install
	$(BIN)/backpain serve

test: install
	$(BIN)/python -m pytest

eval: install
	$(BIN)/backpain eval

bench: install
	$(BIN)/python benchmarks/bench.py

clean:
	rm -rf $(VENV) index data artifacts evals/report
