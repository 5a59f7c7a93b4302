#!/usr/bin/env bash
# Run a command against a dedicated, throw-away Kafka and Postgres, then stop them.
#
#   deploy/local/with-infra.sh CMD [ARGS...]
#
# Installs the locked workspace (uv sync --frozen), wipes and starts Kafka on
# 127.0.0.1:19092 and Postgres on 127.0.0.1:15432 (data under .ledgerflow/test/),
# exports LEDGERFLOW_KAFKA_BOOTSTRAP and LEDGERFLOW_DATABASE_URL, runs CMD, always stops
# both, and exits with CMD's exit code. `make test` and `make bench` use it.
#
# Environment:
#   LEDGERFLOW_TEST_KAFKA_PORT (19092), LEDGERFLOW_TEST_PG_PORT (15432)
#   LEDGERFLOW_TEST_DIR ($REPO/.ledgerflow/test)
#   LEDGERFLOW_TEST_KAFKA_BOOTSTRAP / LEDGERFLOW_TEST_DATABASE_URL: use these servers
#     instead of starting our own (nothing is wiped or stopped then)
#   LEDGERFLOW_SKIP_SYNC=1: skip `uv sync --frozen`
set -euo pipefail
# shellcheck source=deploy/local/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
LOG_TAG=with-infra
HERE="$LEDGERFLOW_REPO/deploy/local"

if [[ $# -eq 0 ]]; then
  echo "usage: $0 CMD [ARGS...]" >&2
  exit 2
fi

TEST_DIR="$(realpath -ms "${LEDGERFLOW_TEST_DIR:-$LEDGERFLOW_REPO/.ledgerflow/test}")"
export KAFKA_PORT="${LEDGERFLOW_TEST_KAFKA_PORT:-19092}"
export KAFKA_CONTROLLER_PORT="$((KAFKA_PORT + 1))"
export KAFKA_DATA_DIR="$TEST_DIR/kafka"
export PG_PORT="${LEDGERFLOW_TEST_PG_PORT:-15432}"
export PG_DATA_DIR="$TEST_DIR/postgres"
export PG_FSYNC=off

own_kafka=0
own_pg=0
timings=()
T_ALL="$(now)"

phase_done() { # NAME START
  local t
  t="$(elapsed "$2")"
  timings+=("$(printf '%-16s %8s' "$1" "$t")")
  log "$1: $t"
}

cleanup() {
  local rc=$? t
  trap - EXIT INT TERM
  wait 2>/dev/null || true # a start still under way writes its pid file first
  t="$(now)"
  ((own_kafka)) && { "$HERE/kafka.sh" stop || rc=1; }
  ((own_pg)) && { "$HERE/postgres.sh" stop || rc=1; }
  ((own_kafka + own_pg)) && phase_done "stop infra" "$t"
  phase_done "total" "$T_ALL"
  printf '[%s] timings:\n' "$LOG_TAG" >&2
  printf '  %s\n' "${timings[@]}" >&2
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

t="$(now)"
uv_sync
phase_done "uv sync" "$t"

if [[ -n "${LEDGERFLOW_TEST_KAFKA_BOOTSTRAP:-}" ]]; then
  export LEDGERFLOW_KAFKA_BOOTSTRAP="$LEDGERFLOW_TEST_KAFKA_BOOTSTRAP"
  log "using the external Kafka at $LEDGERFLOW_KAFKA_BOOTSTRAP"
else
  t="$(now)"
  "$HERE/kafka.sh" fetch
  phase_done "fetch kafka" "$t"
fi

# Start both at once (Kafka takes longest); a leftover of a crashed run is stopped and
# wiped first, so every run starts from empty servers.
t="$(now)"
pids=()
if [[ -z "${LEDGERFLOW_TEST_KAFKA_BOOTSTRAP:-}" ]]; then
  own_kafka=1
  ("$HERE/kafka.sh" wipe && "$HERE/kafka.sh" start) &
  pids+=($!)
  export LEDGERFLOW_KAFKA_BOOTSTRAP="127.0.0.1:$KAFKA_PORT"
fi
if [[ -n "${LEDGERFLOW_TEST_DATABASE_URL:-}" ]]; then
  export LEDGERFLOW_DATABASE_URL="$LEDGERFLOW_TEST_DATABASE_URL"
  log "using the external Postgres at $LEDGERFLOW_DATABASE_URL"
else
  own_pg=1
  ("$HERE/postgres.sh" wipe && "$HERE/postgres.sh" start) &
  pids+=($!)
  export LEDGERFLOW_DATABASE_URL="postgresql://ledgerflow@127.0.0.1:$PG_PORT/ledgerflow"
fi
failed=0
for pid in "${pids[@]}"; do wait "$pid" || failed=1; done
((failed == 0)) || die "infrastructure did not start (logs under $TEST_DIR)"
phase_done "start infra" "$t"

log "LEDGERFLOW_KAFKA_BOOTSTRAP=$LEDGERFLOW_KAFKA_BOOTSTRAP"
log "LEDGERFLOW_DATABASE_URL=$LEDGERFLOW_DATABASE_URL"
log "running: $*"
t="$(now)"
set +e
(cd "$LEDGERFLOW_REPO" && "$@")
cmd_rc=$?
set -e
phase_done "command (rc=$cmd_rc)" "$t"
exit "$cmd_rc"
