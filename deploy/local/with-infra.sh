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
#   LEDGERFLOW_WITH_JAEGER=1 (`make test` sets it): also build (cached) and start Jaeger v2
#     (deploy/local/jaeger.sh) on 127.0.0.1, OTLP on LEDGERFLOW_TEST_JAEGER_OTLP_PORT
#     (14317 gRPC, +1 HTTP), query API on LEDGERFLOW_TEST_JAEGER_QUERY_PORT (16696), and
#     export LEDGERFLOW_TEST_JAEGER_URL / LEDGERFLOW_TEST_JAEGER_OTLP_GRPC /
#     LEDGERFLOW_TEST_JAEGER_OTLP_HTTP. If it cannot, LEDGERFLOW_TEST_JAEGER_ERROR says why
#     and the tracing test fails with that reason (the other tests still run).
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
own_jaeger=0
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
  ((own_jaeger)) && { "$HERE/jaeger.sh" stop || rc=1; }
  ((own_kafka + own_pg + own_jaeger)) && phase_done "stop infra" "$t"
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
jaeger_pid=""
if [[ "${LEDGERFLOW_WITH_JAEGER:-0}" == 1 && -z "${LEDGERFLOW_TEST_JAEGER_URL:-}" ]]; then
  # Built on first use (minutes), alongside the brokers; a failure fails only the test
  # that needs Jaeger, with the reason.
  export JAEGER_OTLP_GRPC_PORT="${LEDGERFLOW_TEST_JAEGER_OTLP_PORT:-14317}"
  export JAEGER_OTLP_HTTP_PORT="$((JAEGER_OTLP_GRPC_PORT + 1))"
  export JAEGER_QUERY_PORT="${LEDGERFLOW_TEST_JAEGER_QUERY_PORT:-16696}"
  export JAEGER_QUERY_GRPC_PORT="$((JAEGER_QUERY_PORT + 1))"
  export JAEGER_HEALTH_PORT="$((JAEGER_QUERY_PORT + 2))"
  export JAEGER_DATA_DIR="$TEST_DIR/jaeger"
  own_jaeger=1
  mkdir -p "$TEST_DIR"
  ("$HERE/jaeger.sh" wipe && "$HERE/jaeger.sh" start) >"$TEST_DIR/jaeger-start.log" 2>&1 &
  jaeger_pid=$!
fi
failed=0
for pid in "${pids[@]}"; do wait "$pid" || failed=1; done
((failed == 0)) || die "infrastructure did not start (logs under $TEST_DIR)"
if [[ -n "$jaeger_pid" ]]; then
  if wait "$jaeger_pid"; then
    export LEDGERFLOW_TEST_JAEGER_URL="http://127.0.0.1:$JAEGER_QUERY_PORT"
    export LEDGERFLOW_TEST_JAEGER_OTLP_GRPC="http://127.0.0.1:$JAEGER_OTLP_GRPC_PORT"
    export LEDGERFLOW_TEST_JAEGER_OTLP_HTTP="http://127.0.0.1:$JAEGER_OTLP_HTTP_PORT"
    log "LEDGERFLOW_TEST_JAEGER_URL=$LEDGERFLOW_TEST_JAEGER_URL"
  else
    export LEDGERFLOW_TEST_JAEGER_ERROR="Jaeger did not build or start: $(tail -n 5 "$TEST_DIR/jaeger-start.log" | tr '\n' ' ')"
    log "$LEDGERFLOW_TEST_JAEGER_ERROR"
  fi
fi
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
