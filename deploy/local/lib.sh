# Shared helpers for the deploy/local scripts. Source it; do not run it.
# shellcheck shell=bash

LEDGERFLOW_REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
LEDGERFLOW_CACHE_DIR="${LEDGERFLOW_CACHE_DIR:-$LEDGERFLOW_REPO/.cache}"
export UV_PYTHON_DOWNLOADS="${UV_PYTHON_DOWNLOADS:-never}"

log() { printf '[%s] %s\n' "${LOG_TAG:-ledgerflow}" "$*" >&2; }
die() { log "error: $*"; exit 1; }

now() { date +%s.%N; }
# elapsed START -> "1.23s"
elapsed() { awk -v s="$1" -v e="$(now)" 'BEGIN { printf "%.2fs", e - s }'; }

# tcp_open HOST PORT: true when something accepts a TCP connection there.
tcp_open() {
  timeout 2 bash -c "exec 3<>/dev/tcp/$1/$2" 2>/dev/null
}

# pid_alive PIDFILE PATTERN: true when the pid in PIDFILE is alive and its command line
# contains PATTERN (so a recycled pid is never mistaken for our server).
pid_alive() {
  local pidfile="$1" pattern="$2" pid
  [[ -s "$pidfile" ]] || return 1
  pid="$(cat "$pidfile")"
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  kill -0 "$pid" 2>/dev/null || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$pattern"
}

# ensure_uv: uv on PATH, installing it with pip when missing.
ensure_uv() {
  if command -v uv >/dev/null 2>&1; then return 0; fi
  log "uv not found: installing it with pip"
  python3 -m pip install --quiet uv || python3 -m pip install --quiet --user uv \
    || die "could not install uv (pip install uv)"
  export PATH="$HOME/.local/bin:$PATH"
  command -v uv >/dev/null 2>&1 || die "uv installed but not on PATH"
}

# uv_sync: install the locked workspace (skipped with LEDGERFLOW_SKIP_SYNC=1).
uv_sync() {
  if [[ "${LEDGERFLOW_SKIP_SYNC:-0}" == 1 ]]; then return 0; fi
  ensure_uv
  (cd "$LEDGERFLOW_REPO" && uv sync --frozen --quiet) || die "uv sync --frozen failed"
}
