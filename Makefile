# The project's habits, by name. The README's Quick start is `make demo` and `make test`.
# Everything runs inside .venv, which `setup` builds from requirements/dev.lock (pinned).

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
SOURCES := core/src plugins/mock/src plugins/claude/src plugins/openai/src plugins/ollama/src
DIST   ?= dist
# pip's own progress (each package collected, bars on a terminal) while setup installs;
# under CI (CI=true) only its errors, as the log is read after the fact.
PIP_PROGRESS := $(if $(CI),--quiet,--progress-bar on)

.PHONY: setup demo test pytest lint format typecheck docs bench bench-lock dist lock clean \
	redis-server

setup: $(STAMP)

$(STAMP): requirements/dev.lock core/pyproject.toml plugins/mock/pyproject.toml \
		plugins/claude/pyproject.toml plugins/openai/pyproject.toml plugins/ollama/pyproject.toml
	@echo "installing the development environment into $(VENV) (about a minute on a fresh machine)"
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install $(PIP_PROGRESS) --disable-pip-version-check -r requirements/dev.lock
	touch $(STAMP)

demo: setup
	$(BIN)/tachikoma backends
	$(BIN)/tachikoma complete -b mock "Tell me about Tachikoma"

test: setup redis-server lint typecheck pytest docs

# The shared-quota tests start a real redis-server on 127.0.0.1: install the OS package
# where we may (CI runs as root); elsewhere they skip, saying so (under CI they fail).
redis-server:
	@command -v redis-server >/dev/null || { \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
			echo "installing redis-server (apt-get) for the shared-quota tests"; \
			apt-get update -qq && apt-get install -y -qq redis-server >/dev/null; \
		else \
			echo "redis-server is not installed: the shared-quota tests will skip"; \
		fi; \
	}

pytest: setup
	$(BIN)/pytest --plugin=all --sockets

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: setup
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

typecheck: setup
	$(BIN)/mypy $(SOURCES)

docs: setup
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet --site-dir build/site

# The benchmark runner (half an hour: writes benchmarks/RESULTS.md and its plot), then each
# micro-benchmark of one part. The official SDKs and matplotlib are benchmark-only
# dependencies, pinned in requirements/bench.txt and installed here, never by `setup`.
BENCH_STAMP := $(VENV)/.bench-installed

$(BENCH_STAMP): $(STAMP) requirements/bench.txt
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements/bench.txt
	touch $(BENCH_STAMP)

bench: $(BENCH_STAMP)
	$(BIN)/python -m benchmarks
	@for script in benchmarks/[!_]*.py; do \
		module=$$(basename $$script .py); echo "== python -m benchmarks.$$module"; \
		$(BIN)/python -m benchmarks.$$module || exit 1; \
	done

# Re-pin the benchmark-only dependencies within the versions dev.lock pins (needs uv).
bench-lock:
	mkdir -p build && grep -v '^-e' requirements/dev.lock > build/dev-constraints.txt
	uv pip compile requirements/bench.in -c build/dev-constraints.txt -o requirements/bench.txt \
		--universal --python-version 3.10 --no-header --annotation-style line

# A wheel and an sdist of every distribution into $(DIST)/, checked by `twine check --strict`.
dist: setup
	$(BIN)/python scripts/build_dists.py --out-dir $(DIST)

# Re-pin the development environment (needs uv: `pip install uv`).
lock:
	uv pip compile requirements/dev.in -o requirements/dev.lock --universal \
		--python-version 3.10 --no-header --annotation-style line

clean:
	rm -rf $(VENV) build dist site .mypy_cache .ruff_cache .pytest_cache .hypothesis
