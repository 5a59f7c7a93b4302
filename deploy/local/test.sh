#!/usr/bin/env bash
# `make test`: from a fresh clone, install what is needed, start a dedicated Kafka and
# Postgres, run every test, stop them, and exit with pytest's exit code.
#
#   deploy/local/test.sh [PYTEST_ARGS...]     e.g. deploy/local/test.sh tests/unit -x
set -euo pipefail
# shellcheck source=deploy/local/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
LOG_TAG=test
ensure_uv
# The UI's browser test drives Debian's Chromium (never a downloaded browser build).
if ! command -v chromium >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  log "installing chromium for the browser tests"
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
    || log "could not install chromium; the browser test will be skipped"
fi
"$LEDGERFLOW_REPO/services/ui/build-assets.sh" || log "could not build the UI's assets; using the committed ones"
# Jaeger v2 for the tracing test (tests/e2e/test_tracing.py), built with `go install`.
export LEDGERFLOW_WITH_JAEGER=1
exec "$LEDGERFLOW_REPO/deploy/local/with-infra.sh" \
  uv run --frozen pytest -q -p no:cacheprovider "$@"
