# tuneloop developer commands. `make demo` and `make test` are the README's two commands.
PYTHON ?= python3.11
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install demo test test-fast lint format typecheck bench bench-smoke lock clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# Installs exactly the locked versions (constraints.txt) of the package and its extras.
# requirements-reference.txt: reference implementations the tests compare against whose
# own pins conflict with our lock (gbstats 0.8.0 pins numpy<2), installed without deps.
$(STAMP): $(BIN)/python pyproject.toml constraints.txt requirements-reference.txt
	$(BIN)/pip install --quiet -c constraints.txt -e '.[train,distributed,kafka,dev]'
	$(BIN)/pip install --quiet --no-deps -r requirements-reference.txt
	touch $(STAMP)

install: $(STAMP)

# The main job on the embedded defaults: seed, collect, train, track, evaluate.
demo: install
	$(BIN)/tuneloop demo

test: install
	$(BIN)/python -m pytest -q

# Unit and the fast integration tests (no e2e, nothing marked slow): a few minutes.
test-fast: install
	$(BIN)/python -m pytest -q -m "not slow" tests/unit tests/integration

lint: install
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy src
	$(BIN)/lint-imports

format: install
	$(BIN)/ruff format src tests bench
	$(BIN)/ruff check --fix src tests bench

# Full benchmarks (PostgreSQL at TUNELOOP_BENCH_DATABASE_URL, default the local server).
bench: install
	$(BIN)/python bench/collect.py
	$(BIN)/python bench/assign.py
	$(BIN)/python bench/ingest.py
	$(BIN)/python bench/train.py
	$(BIN)/python bench/api.py
	$(BIN)/python bench/api.py --database-url "$${TUNELOOP_BENCH_DATABASE_URL:-postgresql://postgres@127.0.0.1:5432/test}"
	$(BIN)/python bench/route.py

# The same scripts at tiny sizes: they run, they print their ratios (not meaningful here).
bench-smoke: install
	$(BIN)/python bench/collect.py --posts 5000 --small 500
	$(BIN)/python bench/assign.py --units 20000 --rounds 1
	$(BIN)/python bench/ingest.py --events 5000 --batch 1000 --rounds 1
	$(BIN)/python bench/train.py --posts 300 --steps 5 --rounds 1
	$(BIN)/python bench/api.py --smoke
	$(BIN)/python bench/route.py --smoke

# Re-resolve the lock after changing dependencies in pyproject.toml.
lock: $(BIN)/python
	$(BIN)/pip install --quiet uv
	$(BIN)/uv pip compile pyproject.toml --extra train --extra distributed --extra kafka --extra dev --python-version 3.11 \
		--python-platform x86_64-manylinux_2_28 -c lock-pins.txt -o constraints.txt

clean:
	rm -rf $(VENV) .tuneloop .pytest_cache .mypy_cache .ruff_cache
