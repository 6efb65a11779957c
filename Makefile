# Two commands on a fresh machine (Python 3.11+, make, git):
#   make up     install, then run the dev stack (Temporal dev server + embedded PostgreSQL + worker)
#   make test   install, then run the whole test suite
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install browser deploy-tools up test test-fast bench bench-long lint clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11 or newer is needed (set PYTHON=...)")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP)

# Debian's Chromium for the console's browser tests (no browser download at run time).
browser:
	./scripts/ensure-chromium

# Debian's promtool and docker-compose for the checks of deploy/ and docker-compose.yml.
deploy-tools:
	./scripts/ensure-deploy-tools

up: install
	$(BIN)/escalations up

# Two workers, one per core. An idle worker takes tests from a busy one (worksteal), and tests/ordering.py
# starts every worker on long files, so the long ones spread. (Three workers ran in 6:46 instead of about 9
# minutes, but starved the fault suite's worker processes past their 4 s workflow task timeout.)
test: install browser deploy-tools
	$(BIN)/python -m tests -n 2 --dist worksteal

test-fast: install browser deploy-tools
	$(BIN)/python -m tests -n 2 --dist worksteal -m "not slow"

bench: install
	$(BIN)/python -m bench

# make bench plus the long scenarios (capacity: a ramp of the deadline rate, 10 minutes; scale:
# 100,000 open cases with 10 deadlines/s falling due, 1 hour 44 minutes on a 2-core machine; all of it
# 2 hours 43 minutes there).
bench-long: install
	$(BIN)/python -m bench --long

lint: install
	$(BIN)/ruff check . && $(BIN)/ruff format --check . && $(BIN)/mypy

clean:
	rm -rf $(VENV) .data .pytest_cache
