# ledgerflow: the front door. `make up` runs everything locally; `make test` runs every test.
SHELL := bash
.DEFAULT_GOAL := help
UV_PYTHON_DOWNLOADS ?= never
export UV_PYTHON_DOWNLOADS

LOCAL := deploy/local
BENCH ?= python -m tests.bench.run

.PHONY: help up test ui-assets screenshots deploy-check bench lint fmt sync kafka-start kafka-stop pg-start pg-stop status clean distclean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{ printf "  make %-12s %s\n", $$1, $$2 }'

up: ## run Kafka, Postgres and every service with the example DAGs (Ctrl-C stops all)
	$(LOCAL)/up.sh

test: ## install, start a throw-away Kafka and Postgres, run all tests (ARGS="..." for pytest)
	$(LOCAL)/test.sh $(ARGS)

ui-assets: ## vendor the UI's browser libraries from npm (package-lock.json) into its static folder
	services/ui/build-assets.sh

screenshots: ## regenerate docs/screenshots/*.png from the UI and Jaeger's UI in headless Chromium (real stack)
	LEDGERFLOW_UI_SCREENSHOTS=docs/screenshots $(LOCAL)/test.sh tests/e2e/test_ui_browser.py -k screenshots $(ARGS)
	JAEGER_UI_ASSETS="$$($(LOCAL)/jaeger-ui.sh path)" LEDGERFLOW_TRACE_SCREENSHOT=docs/screenshots/jaeger-trace.png $(LOCAL)/test.sh tests/e2e/test_tracing.py -k attempt_tree

deploy-check: ## validate Dockerfile, compose and Kubernetes files offline (no Kafka, no Docker)
	uv run --frozen pytest -q -p no:cacheprovider tests/deploy tests/unit/test_kafka_security.py tests/unit/test_probes.py $(ARGS)

bench: ## run the benchmarks against a throw-away Kafka and Postgres
	$(LOCAL)/with-infra.sh uv run --frozen $(BENCH) $(ARGS)

lint: ## ruff check and format check
	uv run --frozen ruff check . && uv run --frozen ruff format --check .

fmt: ## format and fix what ruff can
	uv run --frozen ruff format . && uv run --frozen ruff check --fix .

sync: ## install the locked workspace into .venv
	uv sync --frozen

kafka-start: ## start the local Kafka (KAFKA_PORT, default 9092)
	$(LOCAL)/kafka.sh start

kafka-stop: ## stop the local Kafka
	$(LOCAL)/kafka.sh stop

pg-start: ## start the local Postgres (PG_PORT, default 5432)
	$(LOCAL)/postgres.sh start

pg-stop: ## stop the local Postgres
	$(LOCAL)/postgres.sh stop

status: ## show whether the local Kafka and Postgres run
	-@$(LOCAL)/kafka.sh status
	-@$(LOCAL)/postgres.sh status

clean: ## stop the local and test servers and delete .ledgerflow/ (keeps the jar cache)
	$(LOCAL)/kafka.sh wipe
	$(LOCAL)/postgres.sh wipe
	KAFKA_PORT=19092 KAFKA_DATA_DIR=.ledgerflow/test/kafka $(LOCAL)/kafka.sh wipe
	PG_PORT=15432 PG_DATA_DIR=.ledgerflow/test/postgres $(LOCAL)/postgres.sh wipe
	rm -rf .ledgerflow

distclean: clean ## clean, and delete the jar cache (.cache/)
	rm -rf .cache
