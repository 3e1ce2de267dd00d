# Each target bootstraps .venv from requirements.lock when it is missing or older than the lock.
# uv is used when pip can install it (much faster); plain pip does the same job otherwise.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-from-lock

.PHONY: demo test bench lint lock clean

$(STAMP): requirements.lock pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@if $(BIN)/python -m pip install -q uv >/dev/null 2>&1; then \
		$(BIN)/python -m uv pip install -q --python $(BIN)/python -r requirements.lock && \
		$(BIN)/python -m uv pip install -q --python $(BIN)/python --no-deps -e . ; \
	else \
		$(BIN)/python -m pip install -q -r requirements.lock && \
		$(BIN)/python -m pip install -q --no-deps -e . ; \
	fi
	@touch $(STAMP)

demo: $(STAMP)
	$(BIN)/defai demo

test: $(STAMP)
	$(BIN)/python -m pytest -n 2

bench: $(STAMP)
	@for b in tests/benchmarks/bench_*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy defai

# Re-resolve the pins after editing pyproject.toml's dependencies.
lock: $(STAMP)
	$(BIN)/python -m uv pip compile pyproject.toml --extra dev --universal --python-version 3.11 -o requirements.lock
	$(BIN)/python -m uv pip compile pyproject.toml --extra dev --extra allora --universal --python-version 3.11 -o requirements-allora.lock

clean:
	rm -rf $(VENV) .venv-peer .pytest_cache .mypy_cache .ruff_cache defai-report
