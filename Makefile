# ClypAI: the two commands of the README's quick start, and what they stand on.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

# `make test` talks to the real services on this machine. Locally the test database is
# kept between runs (--reuse-db: new migrations are still applied); .ci/run starts anew.
TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/clypai
TEST_REDIS_URL ?= redis://127.0.0.1:6379/15
PYTEST_ARGS ?= --reuse-db
# The suite runs on TEST_WORKERS processes (pytest-xdist; a file's tests stay together on
# one), each with its own test database and Redis database (tests/xdist_env.py); most of
# its time is spent waiting on worker processes and ffmpeg. TEST_WORKERS=0: one process.
TEST_WORKERS ?= 2

.PHONY: install clip test run worker web migrate lint format bench clean ffmpeg browser

install: $(STAMP) ffmpeg browser
	@$(PY) manage.py migrate --verbosity 0
	@$(PY) manage.py prepare_models --verbosity 0

# Re-run pip only when the declared dependencies change. The install steps are
# deploy/install.sh's, which deploy/Dockerfile runs too.
$(STAMP): pyproject.toml deploy/install.sh
	@command -v $(PYTHON) >/dev/null || { echo "Python 3.11 is needed ($(PYTHON) not found)"; exit 1; }
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	deploy/install.sh python $(PY) dev,openai --editable
	@touch $(STAMP)

ffmpeg:
	@deploy/install.sh system

# The dashboard's browser tests: Debian's Chromium (Playwright drives it; its own browser
# download is not used) and axe-core from npm (package-lock.json).
browser:
	@pkgs=""; command -v chromium >/dev/null || pkgs="chromium"; \
	command -v npm >/dev/null || pkgs="$$pkgs npm"; \
	test -z "$$pkgs" || { \
		echo "Installing$$pkgs from Debian's packages"; \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$pkgs >/dev/null; }
	@test -f node_modules/axe-core/axe.min.js || npm ci --no-audit --no-fund --silent

# make clip VIDEO=path/or/url [ARGS="--criteria 'funny moments' --count 3 --json"]
clip: install
	@test -n "$(VIDEO)" || { echo 'usage: make clip VIDEO=<file or URL> [ARGS="--count 3 --json"]'; exit 2; }
	@$(PY) manage.py clip "$(VIDEO)" $(ARGS)

test: $(STAMP) ffmpeg browser
	DATABASE_URL=$(TEST_DATABASE_URL) REDIS_URL=$(TEST_REDIS_URL) CLYPAI_JOBS_INLINE=false \
		$(PY) -m pytest -n $(TEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

# ClypAI as production runs it (manage.py serve): gunicorn, CLYPAI_WORKERS RQ workers
# (one with the scheduler) and the sweep loop, each restarted when it dies, on
# DATABASE_URL and REDIS_URL (and S3 when CLYPAI_S3_* is set); with no REDIS_URL, the
# embedded default (SQLite, local disk, jobs in the web process's threads). PORT (8000).
# Ctrl-C or SIGTERM stops every process cleanly.
run: install
	@$(PY) manage.py collectstatic --noinput --verbosity 0
	@exec $(PY) manage.py serve

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports --no-cache

format:
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

clean:
	rm -rf $(VENV) var .pytest_cache
