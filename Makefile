# Two commands on a fresh machine with Python 3 and make: `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
PROTOS := $(wildcard proto/docgate/v1/*.proto)
GEN    := generated/docgate/v1
PYDIRS := src tests alembic scripts $(wildcard bench)

.PHONY: install run test lint format protos check-protos migrate bench bench-writes clean

# (Re)install when the venv is missing or pyproject.toml changed since the last install.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

run: install
	$(BIN)/docgate serve

migrate: install
	$(BIN)/docgate migrate upgrade

# Everything CI checks: lint, types, generated-code drift, migrations round trip, all tests.
test: install lint check-protos
	$(BIN)/pytest

lint: install
	$(BIN)/buf lint
	$(BIN)/ruff check $(PYDIRS)
	$(BIN)/ruff format --check $(PYDIRS)
	$(BIN)/mypy
	$(BIN)/lint-imports --no-cache

format: install
	$(BIN)/ruff check --fix $(PYDIRS)
	$(BIN)/ruff format $(PYDIRS)

# Regenerate generated/ from proto/ (pinned grpcio-tools + mypy-protobuf: reproducible).
protos: install
	rm -rf $(GEN)
	$(BIN)/python scripts/gen_protos.py generated

# Fails when generated/ is not exactly what `make protos` would write.
check-protos: install
	rm -rf .protos-check && mkdir -p .protos-check
	$(BIN)/python scripts/gen_protos.py .protos-check
	diff -r -x __pycache__ .protos-check/docgate generated/docgate \
	  || (echo "generated/ is stale: run 'make protos' and commit the result" && exit 1)
	rm -rf .protos-check

bench: install
	$(BIN)/python -m bench $(BENCH_ARGS)

# Write throughput with the audit trail against the code at BEFORE (default main).
bench-writes: install
	$(BIN)/python -m bench.writes --ref $(or $(BEFORE),main) $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .protos-check .pytest_cache .mypy_cache .ruff_cache
