# The two commands a newcomer needs: `make report` and `make test`.
# Both create .venv from requirements.txt when it is missing or older than requirements.txt.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: report test baselines bench lint clean help

help:  ## list the targets
	@grep -E '^[a-z]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

$(STAMP): requirements.txt pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	@touch $@

report: $(STAMP)  ## build the warehouse and publish the book to _build/html
	$(BIN)/greenery report

test: $(STAMP)  ## unit tests, model fixtures, CLI exit codes and nbval baselines
	$(BIN)/python -m pytest

baselines: $(STAMP)  ## re-execute the notebooks on the sample into tests/baselines (review the diff)
	$(BIN)/python -m greenery.tools.baselines

SCALES ?= 1 10 100
bench: $(STAMP)  ## speed and memory at $(SCALES) (SCALES="1 10 100 1000" adds 1000) against DuckDB's floor; rewrites README's table
	$(BIN)/python -m greenery.tools.bench --scales $(SCALES) --readme

lint: $(STAMP)  ## ruff on Python, sqlfluff on the models
	$(BIN)/ruff check src tests
	$(BIN)/sqlfluff lint src/greenery/models src/greenery/analyses

clean:  ## remove built outputs (never the raw data or the history)
	rm -rf _build data/warehouse data/sample data/bench
