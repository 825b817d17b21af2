# The two commands: `make run` and `make test`. Both set up .venv first.
VENV ?= .venv
PY := $(VENV)/bin/python
export PATH := $(abspath $(VENV))/bin:$(PATH)

.PHONY: install compose-tool browser run stop test check lint format bench bench-scale audit fuzz clean

# uv resolves and installs in about 20 s what pip takes a minute for (the suite's budget
# counts the install); pip stays the fallback where uv cannot be had.
$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q uv && $(VENV)/bin/uv pip install -q --python $(PY) -e '.[dev]' \
	  || $(PY) -m pip install -q -e '.[dev]'
	touch $@

install: $(VENV)/.installed

# Debian's docker-compose, for tests/ops/test_compose.py (`docker-compose config` needs no
# Docker engine). Installed only where apt-get works (CI runs as root); skipped otherwise.
compose-tool:
	@command -v docker-compose >/dev/null 2>&1 || ! command -v apt-get >/dev/null 2>&1 || \
	  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker-compose >/dev/null; } || \
	  echo "docker-compose not installed: the compose file test will be skipped"

# Debian's chromium for the workbench's browser tests (tests/e2e/web): Playwright cannot
# download browsers here, and a missing browser fails those tests rather than skipping them.
browser:
	@command -v chromium >/dev/null 2>&1 || ! command -v apt-get >/dev/null 2>&1 || \
	  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-wqy-microhei >/dev/null; } || \
	  echo "chromium not installed: the browser tests will fail"

run: install
	$(PY) -m service.cli dev

# Stop what an earlier `make run` left behind (its supervisord and children).
stop: install
	$(PY) -m service.cli stop

# Static checks first (seconds), then unit tests without servers, then the real components
# in TEST_PROCESSES processes (pytest-xdist, a test file per process at a time): half the
# suite waits on servers, timers and restarts, so two processes use the second core.
TEST_PROCESSES ?= 2
test: install compose-tool browser check
	$(PY) -m pytest tests/unit
	$(PY) -m pytest -n $(TEST_PROCESSES) --dist loadfile tests/integration tests/e2e

# ruff, mypy and the import contract (core <- rules <- workflows <- ... <- service), and
# every test module imports (mypy does not read tests/: a broken import there would
# otherwise surface only minutes into the server tests).
check: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports
	@$(PY) -m pytest --collect-only -q tests > $(VENV)/collect.log \
		|| { tail -40 $(VENV)/collect.log; exit 1; }
	@tail -1 $(VENV)/collect.log

lint: check
	$(VENV)/bin/ruff format --check .

format: install
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

bench: install
	$(PY) -m bench

# The scale run of issue 14 (long): the registry's reads on SCALE_PARCELS parcels'
# rows (minutes), then as many real parcels waiting on their timers (hours at 100,000).
SCALE_PARCELS ?= 100000
bench-scale: install
	BENCH_PAGES_PARCELS=$(SCALE_PARCELS) $(PY) -m bench pages_bench
	BENCH_SCALE_PARCELS=$(SCALE_PARCELS) $(PY) -m bench scale

# Export, replay and read a parcel's decision trail: make audit ARGS="replay --parcel P-1"
ARGS ?= --help
audit: install
	$(PY) -m service.cli audit $(ARGS)

# schemathesis, long profile: 500 requests per operation (CI runs 15 in `make test`).
FUZZ_EXAMPLES ?= 500
fuzz: install
	mkdir -p .data
	LANDFLOW_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) LANDFLOW_FUZZ_REPORT=.data/fuzz-report.json \
	  $(PY) -m pytest tests/e2e/security/test_openapi_fuzz.py -q
	@echo "report: .data/fuzz-report.json"

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache *.egg-info
