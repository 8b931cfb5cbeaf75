# tweetstream: the pipeline's everyday commands. `make help` lists them.
PY      := .venv/bin/python
STACK   := $(PY) -m stack.stackctl

.PHONY: help install lock up down status logs reset replay connectors pipeline-apply pipeline-status sql bench lint test test-unit test-e2e test-faults

help:  ## list the targets
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-16s %s\n", $$1, $$2}'

install:  ## install every part from the package registries (cached: a second run does nothing)
	@bash stack/install.sh

lock:  ## re-pin the Python dependencies with their hashes (requirements*.lock) after a change of pyproject.toml
	@bash stack/lock.sh

up: install  ## start the whole stack, the Flink job and the connectors; returns when healthy
	@$(STACK) up

down:  ## stop what `make up` started (the Flink job with a savepoint)
	@$(STACK) down

status:  ## health of every service
	@$(STACK) status

logs:  ## tail of every service's log
	@$(STACK) logs

reset:  ## stop everything and delete all pipeline data (keeps installs)
	@$(STACK) reset --yes

connectors:  ## deploy every connectors/*.json with curl and wait until they run
	@$(STACK) connectors

pipeline-apply:  ## roll out the latest sql/v<N>_*.sql (VERSION=N for another, REPROCESS=1 to recount from the first post)
	@$(STACK) pipeline-apply $(if $(VERSION),--version $(VERSION)) $(if $(REPROCESS),--reprocess)

pipeline-status:  ## which pipeline version is live, and how it started
	@$(STACK) pipeline-status

replay:  ## send a replay file to the topic tweets: make replay FILE=path.jsonl (default: samples/posts.jsonl)
	@$(PY) -m producer.cli replay $(or $(FILE),samples/posts.jsonl)

sql:  ## Flink SQL shell on the running pipeline, its tables declared (FILE=script.sql: run it and exit with its status)
	@$(STACK) sql $(if $(FILE),--file $(FILE))

bench: up  ## end-to-end benchmark (N=posts, default 1,000,000; DATA=long-tail or synthetic; SOAK=1 for the soak); results in bench/results/
	@$(PY) -m bench.pipeline_bench $(if $(N),--posts $(N)) $(if $(DATA),--data $(DATA)) $(if $(SOAK),--soak)

lint: install  ## ruff: lint and format check of every Python file (settings in pyproject.toml)
	@$(PY) -m ruff check .
	@$(PY) -m ruff format --check .

test-unit: lint  ## lint, then the fast tests (no services)
	@$(PY) -m pytest -q tests/unit

test-e2e: install  ## end-to-end tests on the real stack (started if needed)
	@$(PY) -m pytest -q tests/e2e

test-faults: install  ## the long fault suite: kill -9 every service, 3 rounds, 300,000 posts (FAULT_POSTS, FAULT_ROUNDS)
	@FAULT_POSTS=$${FAULT_POSTS:-300000} FAULT_ROUNDS=$${FAULT_ROUNDS:-3} $(PY) -m pytest -q -s tests/reliability

test: lint  ## everything CI runs: lint, then every test
	@$(PY) -m pytest -q tests
