#!/usr/bin/env bash
# `make up`: run the whole system on this machine. Installs the locked workspace,
# starts Kafka and Postgres (unless LEDGERFLOW_KAFKA_BOOTSTRAP / LEDGERFLOW_DATABASE_URL
# point at external ones), then runs `ledgerflow standalone` in the foreground, which
# starts every service, loads examples/ and prints the addresses and admin credentials.
# Ctrl-C stops the services, then the Kafka and Postgres this script started.
#
#   deploy/local/up.sh [EXTRA standalone ARGS...]
#
# Environment: KAFKA_PORT (9092), PG_PORT (5432), KAFKA_DATA_DIR / PG_DATA_DIR
# (.ledgerflow/kafka, .ledgerflow/postgres; kept between runs, `make clean` wipes them),
# plus every LEDGERFLOW_* setting (LEDGERFLOW_UI_PORT, LEDGERFLOW_API_PORT,
# LEDGERFLOW_ADMIN_PASSWORD, ...).
set -euo pipefail
# shellcheck source=deploy/local/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
LOG_TAG=up
HERE="$LEDGERFLOW_REPO/deploy/local"
export KAFKA_PORT="${KAFKA_PORT:-9092}"
export PG_PORT="${PG_PORT:-5432}"

own_kafka=0
own_pg=0
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  ((own_kafka)) && "$HERE/kafka.sh" stop || true
  ((own_pg)) && "$HERE/postgres.sh" stop || true
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

t="$(now)"
uv_sync
log "workspace installed in $(elapsed "$t")"

# Only what this script starts is stopped on exit: a server already running (say from
# `make kafka-start`) is used and left running.
if [[ -n "${LEDGERFLOW_DATABASE_URL:-}" ]]; then
  log "using the external Postgres at $LEDGERFLOW_DATABASE_URL"
else
  "$HERE/postgres.sh" status >/dev/null || own_pg=1
  "$HERE/postgres.sh" start
  export LEDGERFLOW_DATABASE_URL="postgresql://ledgerflow@127.0.0.1:$PG_PORT/ledgerflow"
fi
if [[ -n "${LEDGERFLOW_KAFKA_BOOTSTRAP:-}" ]]; then
  log "using the external Kafka at $LEDGERFLOW_KAFKA_BOOTSTRAP"
else
  "$HERE/kafka.sh" status >/dev/null || own_kafka=1
  "$HERE/kafka.sh" start
  export LEDGERFLOW_KAFKA_BOOTSTRAP="127.0.0.1:$KAFKA_PORT"
fi

log "LEDGERFLOW_KAFKA_BOOTSTRAP=$LEDGERFLOW_KAFKA_BOOTSTRAP"
log "LEDGERFLOW_DATABASE_URL=$LEDGERFLOW_DATABASE_URL"
cd "$LEDGERFLOW_REPO"
# Not exec: the trap must stop Kafka and Postgres after the services have stopped.
set +e
uv run --frozen ledgerflow standalone --load-examples examples/ "$@"
rc=$?
set -e
exit "$rc"
