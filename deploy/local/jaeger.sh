#!/usr/bin/env bash
# Jaeger v2 (all-in-one, in-memory) for local runs and the tracing tests.
#
#   deploy/local/jaeger.sh fetch    build the jaeger binary from the Go module proxy (cached)
#   deploy/local/jaeger.sh start    start in the background on loopback, wait until ready
#   deploy/local/jaeger.sh stop     SIGTERM, then SIGKILL after JAEGER_STOP_TIMEOUT; harmless if down
#   deploy/local/jaeger.sh ready    exit 0 when the query API answers
#   deploy/local/jaeger.sh status   print whether it runs
#   deploy/local/jaeger.sh wipe     stop, then delete the data dir (config, log, pid)
#
# Jaeger v2 is an OpenTelemetry Collector distribution: it receives OTLP (gRPC and HTTP)
# and serves the query API (/api/traces, /api/services) and the UI on one HTTP port.
# Traces are kept in memory only. Built this way it has no UI assets (a placeholder page
# on the query port); set JAEGER_UI_ASSETS to serve Jaeger's UI from a directory, e.g.
#   JAEGER_UI_ASSETS="$(deploy/local/jaeger-ui.sh path)" deploy/local/jaeger.sh start
#
# The build: Jaeger tags each release twice, v1.X for the old v1 binaries and v2.Y for
# the v2 one (v1.76.0 = v2.13.0, the same commit). The Go module proxy serves only the
# v1.X tags (the module path has no /v2), and `go install module@version` refuses a
# module whose go.mod has replace directives (Jaeger's has one), so the script tries
# `go install` first and otherwise builds the very same module version from the module
# cache (`go mod download`, then `go build ./cmd/jaeger` in it, as the main module).
# That takes several minutes on two cores; the binary is cached.
#
# Environment:
#   JAEGER_OTLP_GRPC_PORT (4317)  JAEGER_OTLP_HTTP_PORT (4318)  OTLP receivers on 127.0.0.1
#   JAEGER_QUERY_PORT (16686)     query HTTP API and UI on 127.0.0.1
#   JAEGER_QUERY_GRPC_PORT (16685)  JAEGER_HEALTH_PORT (13133)
#   JAEGER_DATA_DIR ($REPO/.ledgerflow/jaeger)
#   JAEGER_UI_ASSETS (unset)      a built jaeger-ui (index.html, static/) to serve as the UI
#   JAEGER_START_TIMEOUT (60)  JAEGER_STOP_TIMEOUT (10)  seconds
#   LEDGERFLOW_CACHE_DIR ($REPO/.cache)  where the binary is kept
set -euo pipefail
# shellcheck source=deploy/local/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

JAEGER_RELEASE=v2.13.0
JAEGER_MODULE_VERSION=v1.76.0 # the Go module version of release $JAEGER_RELEASE
JAEGER_MODULE=github.com/jaegertracing/jaeger
JAEGER_OTLP_GRPC_PORT="${JAEGER_OTLP_GRPC_PORT:-4317}"
JAEGER_OTLP_HTTP_PORT="${JAEGER_OTLP_HTTP_PORT:-4318}"
JAEGER_QUERY_PORT="${JAEGER_QUERY_PORT:-16686}"
JAEGER_QUERY_GRPC_PORT="${JAEGER_QUERY_GRPC_PORT:-16685}"
JAEGER_HEALTH_PORT="${JAEGER_HEALTH_PORT:-13133}"
JAEGER_DATA_DIR="$(realpath -m "${JAEGER_DATA_DIR:-$LEDGERFLOW_REPO/.ledgerflow/jaeger}")"
JAEGER_START_TIMEOUT="${JAEGER_START_TIMEOUT:-60}"
JAEGER_STOP_TIMEOUT="${JAEGER_STOP_TIMEOUT:-10}"
JAEGER_UI_ASSETS="${JAEGER_UI_ASSETS:-}"
JAEGER_HOME="$LEDGERFLOW_CACHE_DIR/jaeger-$JAEGER_MODULE_VERSION"
JAEGER_BIN="$JAEGER_HOME/bin/jaeger"
CONFIG="$JAEGER_DATA_DIR/config.yaml"
PIDFILE="$JAEGER_DATA_DIR/jaeger.pid"
LOGFILE="$JAEGER_DATA_DIR/jaeger.log"
LOG_TAG="jaeger:$JAEGER_QUERY_PORT"
PROC_PATTERN="--config $CONFIG"

need_go() {
  command -v go >/dev/null 2>&1 && return 0
  [[ -x /usr/local/go/bin/go ]] && { export PATH="/usr/local/go/bin:$PATH"; return 0; }
  if [[ $EUID -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
    log "go not found: installing golang-go with apt-get"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq golang-go >/dev/null
  fi
  command -v go >/dev/null 2>&1 || die "Go is required to build Jaeger (go install from the module proxy)"
}

cmd_fetch() {
  if [[ -x "$JAEGER_BIN" ]]; then return 0; fi
  need_go
  mkdir -p "$JAEGER_HOME/bin"
  (
    flock 9
    if [[ -x "$JAEGER_BIN" ]]; then exit 0; fi
    start="$(now)"
    build_log="$JAEGER_HOME/build.log"
    log "building Jaeger $JAEGER_RELEASE ($JAEGER_MODULE@$JAEGER_MODULE_VERSION); this takes minutes"
    if GOBIN="$JAEGER_HOME/bin" GOFLAGS=-mod=mod \
      go install "$JAEGER_MODULE/cmd/jaeger@$JAEGER_MODULE_VERSION" >"$build_log" 2>&1; then
      :
    else
      grep -q "replace directives" "$build_log" \
        || { tail -n 30 "$build_log" >&2; die "go install $JAEGER_MODULE/cmd/jaeger failed"; }
      # go install refuses replace directives: build the same module as the main module.
      dir="$(go mod download -json "$JAEGER_MODULE@$JAEGER_MODULE_VERSION" \
        | python3 -c 'import json, sys; print(json.load(sys.stdin)["Dir"])')" \
        || die "go mod download $JAEGER_MODULE@$JAEGER_MODULE_VERSION failed"
      (cd "$dir" && GOFLAGS=-mod=readonly go build -trimpath -ldflags="-s -w" \
        -o "$JAEGER_BIN.tmp" ./cmd/jaeger) >>"$build_log" 2>&1 \
        || { tail -n 30 "$build_log" >&2; die "go build $JAEGER_MODULE/cmd/jaeger failed (log: $build_log)"; }
      mv "$JAEGER_BIN.tmp" "$JAEGER_BIN"
    fi
    [[ -x "$JAEGER_BIN" ]] || die "no jaeger binary after the build (log: $build_log)"
    log "built $JAEGER_BIN in $(elapsed "$start")"
  ) 9>"$JAEGER_HOME/.build.lock"
}

write_config() {
  mkdir -p "$JAEGER_DATA_DIR"
  local ui=""
  if [[ -n "$JAEGER_UI_ASSETS" ]]; then
    [[ -f "$JAEGER_UI_ASSETS/index.html" ]] || die "JAEGER_UI_ASSETS=$JAEGER_UI_ASSETS has no index.html"
    ui="    ui:
      assets_path: $(realpath "$JAEGER_UI_ASSETS")"
  fi
  cat >"$CONFIG" <<EOF
# Generated by deploy/local/jaeger.sh on every start; edit the script, not this file.
# Jaeger v2 all-in-one (cmd/jaeger/config.yaml upstream), trimmed: OTLP in, memory
# storage, query API; everything on loopback.
service:
  extensions: [jaeger_storage, jaeger_query, healthcheckv2]
  pipelines:
    traces:
      receivers: [otlp]
      processors: [batch]
      exporters: [jaeger_storage_exporter]
  telemetry:
    resource:
      service.name: jaeger
    metrics:
      level: none
    logs:
      level: info

extensions:
  healthcheckv2:
    use_v2: true
    http:
      endpoint: 127.0.0.1:$JAEGER_HEALTH_PORT
  jaeger_query:
    # on by default: it would trace its own requests to 127.0.0.1:4317 (the OTLP default,
    # not ours), retrying for seconds, so a SIGTERM waited for the export to time out
    enable_tracing: false
    storage:
      traces: memstore
    http:
      endpoint: 127.0.0.1:$JAEGER_QUERY_PORT
    grpc:
      endpoint: 127.0.0.1:$JAEGER_QUERY_GRPC_PORT
$ui
  jaeger_storage:
    backends:
      memstore:
        memory:
          max_traces: 100000

receivers:
  otlp:
    protocols:
      grpc:
        endpoint: 127.0.0.1:$JAEGER_OTLP_GRPC_PORT
      http:
        endpoint: 127.0.0.1:$JAEGER_OTLP_HTTP_PORT

processors:
  batch:
    timeout: 200ms

exporters:
  jaeger_storage_exporter:
    trace_storage: memstore
EOF
}

query_ok() {
  curl -fsS -o /dev/null --max-time 2 "http://127.0.0.1:$JAEGER_QUERY_PORT/api/services" 2>/dev/null
}

cmd_start() {
  if pid_alive "$PIDFILE" "$PROC_PATTERN"; then
    log "already running (pid $(cat "$PIDFILE"))"
    cmd_wait
    return
  fi
  local port
  for port in "$JAEGER_QUERY_PORT" "$JAEGER_OTLP_GRPC_PORT" "$JAEGER_OTLP_HTTP_PORT"; do
    if tcp_open 127.0.0.1 "$port"; then
      die "port $port is already taken by another process (set the JAEGER_*_PORT variables)"
    fi
  done
  cmd_fetch
  local start
  start="$(now)"
  write_config
  (
    cd "$JAEGER_DATA_DIR"
    exec setsid "$JAEGER_BIN" --config "$CONFIG" </dev/null >"$LOGFILE" 2>&1
  ) &
  echo $! >"$PIDFILE"
  log "starting (pid $!, log $LOGFILE)"
  cmd_wait
  log "ready after $(elapsed "$start"): OTLP grpc 127.0.0.1:$JAEGER_OTLP_GRPC_PORT, http 127.0.0.1:$JAEGER_OTLP_HTTP_PORT, query http://127.0.0.1:$JAEGER_QUERY_PORT"
}

cmd_wait() {
  local deadline=$((SECONDS + JAEGER_START_TIMEOUT))
  until query_ok && tcp_open 127.0.0.1 "$JAEGER_OTLP_GRPC_PORT" && tcp_open 127.0.0.1 "$JAEGER_OTLP_HTTP_PORT"; do
    if ! pid_alive "$PIDFILE" "$PROC_PATTERN"; then
      tail -n 30 "$LOGFILE" >&2 2>/dev/null || true
      die "jaeger exited during start-up (log: $LOGFILE)"
    fi
    ((SECONDS < deadline)) || die "jaeger not ready after ${JAEGER_START_TIMEOUT}s (log: $LOGFILE)"
    sleep 0.2
  done
}

cmd_stop() {
  if ! pid_alive "$PIDFILE" "$PROC_PATTERN"; then
    rm -f "$PIDFILE"
    return 0
  fi
  local pid
  pid="$(cat "$PIDFILE")"
  kill -TERM "$pid" 2>/dev/null || true
  local deadline=$((SECONDS + JAEGER_STOP_TIMEOUT))
  while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.1; done
  if kill -0 "$pid" 2>/dev/null; then
    log "still running after ${JAEGER_STOP_TIMEOUT}s: SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$PIDFILE"
  log "stopped (pid $pid)"
}

cmd_status() {
  if pid_alive "$PIDFILE" "$PROC_PATTERN"; then
    echo "jaeger: running (pid $(cat "$PIDFILE")), query http://127.0.0.1:$JAEGER_QUERY_PORT"
  else
    echo "jaeger: not running"
    return 3
  fi
}

case "${1:-}" in
  fetch) cmd_fetch ;;
  start) cmd_start ;;
  stop) cmd_stop ;;
  ready) query_ok || { log "query API on port $JAEGER_QUERY_PORT does not answer"; exit 1; } ;;
  status) cmd_status ;;
  wipe) cmd_stop && rm -rf "$JAEGER_DATA_DIR" ;;
  *) echo "usage: $0 {fetch|start|stop|ready|status|wipe}" >&2; exit 2 ;;
esac
