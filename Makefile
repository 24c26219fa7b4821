# The two commands a newcomer needs: `make report` and `make test`.
# Both create .venv from requirements.txt when it is missing or older than requirements.txt.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: report test baselines bench bench-trends bench-spark spark-test spark-cluster-test dbt-test java lint clean help pdf lab chromium screenshot browser-test

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

$(STAMP): requirements.txt pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	@touch $@

report: $(STAMP)  ## build the warehouse and publish the book to _build/html
	$(BIN)/greenery report

test: $(STAMP)  ## unit tests, model fixtures, CLI exit codes and nbval baselines
	$(BIN)/python -m pytest

SPARK_STAMP := $(VENV)/.spark-installed

$(SPARK_STAMP): $(STAMP) requirements-spark.txt
	$(BIN)/python -m pip install --quiet -r requirements-spark.txt
	@touch $@

java:  ## Java 17 for Spark: installed from Debian's packages when missing (as root), else says what to install
	@if command -v java >/dev/null 2>&1; then \
	  java -version 2>&1 | head -1; \
	elif command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openjdk-17-jre-headless; \
	else \
	  echo "Spark needs Java 17: install openjdk-17-jre-headless (Debian/Ubuntu: sudo apt-get install" \
	       "openjdk-17-jre-headless), or any Java 17+ runtime with JAVA_HOME set; then rerun make spark-test"; \
	  exit 1; \
	fi

spark-test: $(SPARK_STAMP) java  ## the Spark engine against DuckDB (installs pyspark into .venv, Java if missing)
	GREENERY_REQUIRE_SPARK=1 $(BIN)/python -m pytest tests/test_transpile.py tests/test_spark.py

# A standalone master and worker on 127.0.0.1 from pyspark's own bin/spark-class (nothing else is
# downloaded): the pytest session starts them and stops them by their process ids; if pytest itself
# dies (or the deadline kills it), the trap stops whatever their pid files still name.
spark-cluster-test: $(SPARK_STAMP) java  ## the engines' differential tests (shop, sample) against a local standalone Spark cluster
	@folder=$$(mktemp -d "$${TMPDIR:-/tmp}/greenery-spark-cluster.XXXXXX") && \
	trap '$(BIN)/python -m greenery.tools.spark_cluster stop "$$folder"; rm -rf "$$folder"' EXIT INT TERM && \
	GREENERY_REQUIRE_SPARK=1 GREENERY_SPARK_CLUSTER="$$folder" \
	  timeout 900 $(BIN)/python -m pytest -m cluster tests/test_spark.py

DBT_VENV := .venv-dbt
DBT_STAMP := $(DBT_VENV)/.installed

$(DBT_STAMP): requirements-dbt.txt  # a peer, not a dependency: dbt-core and dbt-duckdb in a venv of their own
	@test -x $(DBT_VENV)/bin/python || $(PYTHON) -m venv $(DBT_VENV)
	$(DBT_VENV)/bin/python -m pip install --quiet -r requirements-dbt.txt
	@touch $@

dbt-test: $(STAMP) $(DBT_STAMP)  ## `dbt build` of the exported dbt project gives greenery's marts and test results (installs dbt-duckdb 1.10 into .venv-dbt)
	GREENERY_REQUIRE_DBT=1 $(BIN)/python -m pytest tests/test_dbt_export.py

baselines: $(STAMP)  ## re-execute the notebooks on the sample into tests/baselines (review the diff)
	$(BIN)/python -m greenery.tools.baselines

SCALES ?= 1 10 100
BUILD_SCALES ?= 1000
bench: $(STAMP) $(if $(DBT),$(DBT_STAMP)) $(if $(SPARK),$(SPARK_STAMP) java)  ## speed and memory at $(SCALES) and the real export against DuckDB's floor, the build alone at $(BUILD_SCALES) (SCALES="1 10 100 1000" adds the report at 1000, BUILD_SCALES= none); DBT=1 adds dbt-duckdb, SPARK=1 Spark on a standalone cluster, REPEATS=N runs of each timed target (3); rewrites docs/engines-and-scale.md's tables and README's
	$(BIN)/python -m greenery.tools.bench --scales $(SCALES) --build-scales $(BUILD_SCALES) --docs $(if $(DBT),--dbt) $(if $(SPARK),--spark) $(if $(REPEATS),--repeats $(REPEATS))

bench-trends: $(STAMP)  ## false alarms and power of the trends' tests over 1,000 generated series each (about a minute)
	$(BIN)/python -m greenery.tools.bench_trends --seeds 1000

bench-spark: $(SPARK_STAMP) java  ## Spark local against DuckDB at scales 1, 10, 100; rewrites docs/engines-and-scale.md's Spark table
	$(BIN)/python -m greenery.tools.bench_spark --docs

lint: $(STAMP)  ## ruff on Python, sqlfluff on the models
	$(BIN)/ruff check src tests
	$(BIN)/sqlfluff lint src/greenery/warehouse/models src/greenery/warehouse/data_tests src/greenery/chapter_kit/analyses

BROWSER_STAMP := $(VENV)/.browser-installed

$(BROWSER_STAMP): $(STAMP) requirements-browser.txt
	$(BIN)/python -m pip install --quiet -r requirements-browser.txt
	@touch $@

chromium:  ## Debian's Chromium and poppler-utils for the browser tests, `make pdf` and `make screenshot`: installed when missing (as root)
	@if command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 \
	    || command -v google-chrome >/dev/null 2>&1; then :; \
	elif command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium poppler-utils; \
	else \
	  echo "the book's PDF and browser tests need Chromium: apt-get install chromium (or brew install --cask chromium)"; \
	  exit 2; \
	fi

browser-test: $(BROWSER_STAMP) chromium  ## every page of the sample's book (and the real export's) in Chromium at 1366 and 390 px, and printed
	GREENERY_REQUIRE_BROWSER=1 $(BIN)/python -m pytest tests/test_browser.py

pdf: $(BROWSER_STAMP) chromium  ## the published book as one PDF: _build/pdf/greenery-report.pdf (prints with Chromium)
	$(BIN)/python -m greenery.publisher.pdf

screenshot: $(STAMP) chromium  ## docs/images/first-page.png: the first page of a book built on the generated sample, 1366x900
	$(BIN)/python -m greenery.tools.screenshot

LAB_STAMP := $(VENV)/.lab-installed
$(LAB_STAMP): requirements-lab.txt $(STAMP)
	$(BIN)/python -m pip install --quiet -r requirements-lab.txt
	@mkdir -p $(VENV)/share/jupyter/lab/settings
	@# open the MyST chapters as notebooks (jupytext), not as text
	@printf '%s\n' '{"@jupyterlab/docmanager-extension:plugin": {"defaultViewers": {"markdown": "Jupytext Notebook", "myst": "Jupytext Notebook"}}}' \
	  > $(VENV)/share/jupyter/lab/settings/overrides.json
	@touch $@

lab: $(LAB_STAMP)  ## open the chapters as notebooks in JupyterLab against the built warehouse
	$(BIN)/greenery build
	GREENERY_WAREHOUSE=$${GREENERY_WAREHOUSE:-$(CURDIR)/data/warehouse/greenery.duckdb} \
	  $(BIN)/jupyter lab --notebook-dir=$(CURDIR) $$([ "$$(id -u)" = 0 ] && echo --allow-root) $(LAB_ARGS) notebooks/summary.md

clean:  ## remove built outputs (never the raw data or the history)
	rm -rf _build data/warehouse data/sample data/bench
