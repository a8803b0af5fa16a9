# One target per process, `make dev` for all of them. Every target installs first what it
# needs and is missing: uv, libmagic, Tesseract's language data and the locked environment;
# chromium and the OCR test documents for `make test` only.
SHELL := /bin/bash
.DEFAULT_GOAL := help

export UV_PYTHON_DOWNLOADS := never
# uv on PATH, or the one `make install-uv` puts in a venv of its own, .tools/: a system
# Python may refuse `pip install` into its own site-packages (PEP 668, e.g. Debian's).
TOOLS := $(CURDIR)/.tools
UV := $(shell command -v uv 2>/dev/null || echo $(TOOLS)/bin/uv)
# apt-get as root, else through sudo.
APT := $(if $(filter 0,$(shell id -u)),,sudo) apt-get
DATA_DIR ?= data
API_URL ?= http://127.0.0.1:8000
TEMPORAL_UI_URL ?= http://127.0.0.1:8233
# The OCR languages to install (Tesseract's form, eng+deu): the environment's, else .env's,
# else eng. eng and osd (orientation and script) are always installed.
OCR_LANGUAGES ?= $(or $(shell sed -n 's/^OCR_LANGUAGES=//p' .env 2>/dev/null | tail -n 1 | tr -d "\"'"),eng)
# Debian's package of a language's data: tesseract-ocr-chi-sim holds chi_sim.
TESSERACT_PACKAGES := $(sort tesseract-ocr $(foreach lang,eng osd $(subst +, ,$(subst ~,,$(OCR_LANGUAGES))),tesseract-ocr-$(subst _,-,$(shell echo $(lang) | tr A-Z a-z))))
# Real born-digital documents (their Debian packages' own manuals) for the OCR recall test.
OCR_TEST_PACKAGES := bzip2-doc shared-mime-info libtasn1-doc
# The workflow's search attributes (infrastructure/temporal/models.py); the Procfile lists them too.
TEMPORAL_SEARCH_ATTRIBUTES := --search-attribute ArtifactId=Keyword --search-attribute MimeType=Keyword --search-attribute ArtifactOutcome=Keyword

.PHONY: help install install-uv install-libmagic install-tesseract install-ocr-samples install-env install-browser dev temporal-dev run run-api run-pipeline-worker run-workflow-worker run-read-worker run-temporal-worker test lint format clean docker-secrets docker-up docker-down check-compose check-image sweep-orphans audit bench bench-quick chaos chaos-quick

help: ## List the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  \033[36m%-22s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

install: install-uv install-libmagic install-tesseract install-env ## Install what the service needs (uv, libmagic, Tesseract, the locked environment), each if missing

install-uv: ## Install uv if it is not on PATH, into .tools/ (a venv of its own, so PEP 668 never refuses it)
	@command -v uv >/dev/null 2>&1 || [ -x $(TOOLS)/bin/uv ] || { \
	  echo "installing uv into $(TOOLS)"; \
	  python3 -m venv $(TOOLS) 2>/dev/null || { \
	    echo "installing python3-venv (python3 cannot make a venv without it)"; \
	    $(APT) update -qq && $(APT) install -y -qq python3-venv && python3 -m venv $(TOOLS); }; \
	  $(TOOLS)/bin/python -m pip install --quiet --disable-pip-version-check uv; }

install-libmagic: ## Install libmagic1 through apt if missing (it sniffs the MIME type of uploads)
	@ldconfig -p 2>/dev/null | grep -q 'libmagic\.so\.1' || { \
	  echo "installing libmagic1 (needed to sniff MIME types)"; \
	  $(APT) update -qq && $(APT) install -y -qq libmagic1; }

install-tesseract: ## Install Tesseract and its data for eng, osd and OCR_LANGUAGES through apt if missing (OCR of scans and images)
	@missing=$$(for package in $(TESSERACT_PACKAGES); do \
	  dpkg-query -W -f='$${Status}\n' $$package 2>/dev/null | grep -q 'install ok installed' || echo $$package; done); \
	[ -z "$$missing" ] || { \
	  echo "installing" $$missing "(OCR)"; \
	  $(APT) update -qq && $(APT) install -y -qq --no-install-recommends $$missing; }

install-ocr-samples: ## Install, through apt if missing, the Debian packages whose PDF manuals the OCR recall test scans
	@missing=$$(for package in $(OCR_TEST_PACKAGES); do \
	  dpkg-query -W -f='$${Status}\n' $$package 2>/dev/null | grep -q 'install ok installed' || echo $$package; done); \
	[ -z "$$missing" ] || { \
	  echo "installing" $$missing "(real documents for the OCR recall test)"; \
	  $(APT) update -qq && $(APT) install -y -qq --no-install-recommends $$missing; }

install-env: install-uv ## Install the locked environment (uv sync --locked) into .venv/
	@$(UV) sync --locked --quiet

install-browser: ## Install chromium through apt if missing (only the web page test drives a browser)
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "installing chromium (the browser of the web page test)"; \
	  $(APT) update -qq && $(APT) install -y -qq chromium; }

dev: install ## Run everything: Temporal dev server + UI, API, pipeline, read and Temporal workers (Ctrl-C stops all)
	@mkdir -p $(DATA_DIR)
	@echo ""
	@echo "  Web page    $(API_URL)/"
	@echo "  API         $(API_URL)   (docs: $(API_URL)/docs)"
	@echo "  Temporal UI $(TEMPORAL_UI_URL)"
	@echo "  Metrics     $(API_URL)/metrics, workers on 127.0.0.1:9464 (Temporal SDK), :9465 (pipeline), :9466 (read)"
	@echo "  Upload:     curl -F file=@some.pdf $(API_URL)/artifacts"
	@echo ""
	@# honcho pipes the processes' output, so they cannot see the terminal themselves: unless
	@# LOG_FORMAT is set (environment or .env), a terminal gets console logs, anything else JSON.
	@if [ -z "$${LOG_FORMAT:-}" ] && ! grep -qsi '^LOG_FORMAT=' .env; then \
	  if [ -t 1 ]; then export LOG_FORMAT=console; else export LOG_FORMAT=json; fi; fi; \
	  $(UV) run --no-sync honcho start -f Procfile

temporal-dev: install-env ## Run the Temporal dev server and its UI on 127.0.0.1 (state kept in data/)
	@mkdir -p $(DATA_DIR)
	$(UV) run --no-sync temporal server start-dev --ip 127.0.0.1 --port 7233 --ui-port 8233 \
	  --db-filename $(DATA_DIR)/temporal.db --log-level warn $(TEMPORAL_SEARCH_ATTRIBUTES) \
	  --dynamic-config-value matching.enableFairness=true

run: run-api ## Run the API (the short name of run-api)

run-api: install ## Run the API (uvicorn) on 127.0.0.1:8000
	$(UV) run --no-sync python -m infrastructure.api

run-pipeline-worker: install ## Run the pipeline worker (event store -> workflow starts)
	$(UV) run --no-sync python -m infrastructure.pipeline_worker

run-workflow-worker: run-pipeline-worker ## Run the pipeline worker (the original design's name of run-pipeline-worker)

run-read-worker: install ## Run the read worker (event store -> read model for GET /artifacts)
	$(UV) run --no-sync python -m infrastructure.read_worker

run-temporal-worker: install ## Run the Temporal worker (ProcessArtifactWorkflow and its activities)
	$(UV) run --no-sync python -m infrastructure.temporal.worker

test: install install-browser install-ocr-samples ## Run the whole test suite (unit, workflow, integration on SQLite and PostgreSQL, e2e)
	$(UV) run --no-sync pytest $(PYTEST_ARGS)

chaos: install ## Run the fault-and-abuse suite (real processes, Temporal, SQLite and PostgreSQL; prints figures)
	$(UV) run --no-sync pytest tests/chaos -s -q

chaos-quick: install ## The fault-and-abuse suite at small scale (a few minutes)
	CHAOS_SCALE=small $(UV) run --no-sync pytest tests/chaos -s -q

lint: install-env ## ruff (lint and format check), mypy --strict and check-compose
	$(UV) run --no-sync ruff check .
	$(UV) run --no-sync ruff format --check .
	$(UV) run --no-sync mypy
	$(UV) run --no-sync python scripts/check_compose.py

check-compose: install-env ## Check docker-compose.yml (compose schema, env vars are settings) and the Dockerfile (hadolint)
	$(UV) run --no-sync python scripts/check_compose.py

check-image: install-env ## Build the image's runtime file system without an engine (debootstrap, cached) and run every process in it to its health check (root)
	@command -v debootstrap >/dev/null 2>&1 || { \
	  echo "installing debootstrap (builds the Dockerfile's Debian base without an engine)"; \
	  $(APT) update -qq && $(APT) install -y -qq debootstrap; }
	$(UV) run --no-sync python -m scripts.check_image

sweep-orphans: install ## Delete blobs no artifact references and stale temp files, older than an hour (ARGS="--dry-run --older-than SECONDS")
	$(UV) run --no-sync python -m infrastructure.sweep_orphans $(ARGS)

audit: install ## Known vulnerabilities in the locked runtime dependencies (pip-audit, or PyPI's advisories where only its project endpoint answers)
	$(UV) run --no-sync python scripts/audit_lock.py

bench: install ## Benchmark against baselines on SQLite and PostgreSQL (about 40 min; ARGS="--store sqlite --only trigger")
	$(UV) run --no-sync python -m bench $(ARGS)

bench-quick: install ## The benchmark at small sizes (about 5 minutes), writes bench/results.json and plots
	$(UV) run --no-sync python -m bench --quick $(ARGS)

docker-secrets: ## Create the compose stack's missing secret files under secrets/ (random; an empty OpenAI key)
	@mkdir -p secrets && chmod 700 secrets
	@# 0644 inside a 0700 directory: the containers' users (uid 10001, postgres) read the
	@# bind-mounted files, other users of this machine cannot reach them.
	@for name in postgres_password aws_secret_access_key api_keys; do \
	  [ -s secrets/$$name ] || { python3 -c 'import secrets; print(secrets.token_urlsafe(32))' > secrets/$$name; \
	    chmod 644 secrets/$$name; echo "created secrets/$$name"; }; done
	@[ -e secrets/openai_api_key ] || { : > secrets/openai_api_key; chmod 644 secrets/openai_api_key; }

docker-up: docker-secrets ## Build the image and start the production-shaped stack (docker-compose.yml), wait until healthy
	docker compose up --detach --build --wait

docker-down: ## Stop the stack (volumes are kept; `docker compose down --volumes` deletes them)
	docker compose down

format: install-env ## Apply ruff's fixes and formatting
	$(UV) run --no-sync ruff check --fix .
	$(UV) run --no-sync ruff format .

clean: ## Delete local data (events, blobs, Temporal state) and caches
	rm -rf $(DATA_DIR) .pytest_cache .mypy_cache .ruff_cache
