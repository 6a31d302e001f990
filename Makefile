# The two set-up commands of README.md: `make run` and `make test`. Both make their own virtualenv.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell sha256sum pyproject.toml | cut -c1-16)
HOST ?= 0.0.0.0
PORT ?= 8000

.PHONY: run test vendor system-deps lint bench

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test]'
	rm -f $(VENV)/.installed-* && touch $@

vendor:
	./scripts/fetch_vendor.sh

system-deps:
	./scripts/system-deps.sh

run: $(STAMP) vendor
	MEETING_DATA_DIR=$${MEETING_DATA_DIR:-./instance} $(BIN)/meeting-server serve --demo --host $(HOST) --port $(PORT)

bench: $(STAMP) vendor
	$(BIN)/python -m pip install -q -e '.[test,bench]'
	$(BIN)/python -m clients.bench_room --sizes 100,500,1000

lint: $(STAMP)
	$(BIN)/ruff check meeting_server clients tests

test: $(STAMP) vendor system-deps lint
	$(BIN)/python -m pytest -q -p no:cacheprovider
