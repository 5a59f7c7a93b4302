#!/usr/bin/env bash
# Jaeger's own web UI for the go-built Jaeger of deploy/local/jaeger.sh.
#
#   deploy/local/jaeger-ui.sh fetch   get the built UI from the Go module proxy, unpack it (cached)
#   deploy/local/jaeger-ui.sh path    fetch, then print the assets directory
#
# Then: JAEGER_UI_ASSETS="$(deploy/local/jaeger-ui.sh path)" deploy/local/jaeger.sh start
# and Jaeger serves its UI on the query port (jaeger_query's ui.assets_path), e.g.
# http://127.0.0.1:16686/trace/<trace id>.
#
# Why this way: a `go build` of Jaeger embeds only a placeholder page (the UI is a
# separate JavaScript repository, built into the release images only), and that
# repository is not published to any package registry we reach. The Go module
# github.com/tonistiigi/jaeger-ui-rest (a dependency of docker buildx, which serves
# Jaeger's UI for build traces) embeds a production build of jaeger-ui, gzipped file by
# file under public/. This script downloads that module with `go mod download` (the Go
# module proxy), gunzips public/ into the cache and leaves index.html untouched, so
# Jaeger's query service injects its own version, storage capabilities and UI config
# into it as it does with the assets it embeds.
#
# The UI is jaeger-ui v1.68.0 (the module's Dockerfile, JAEGERUI_VERSION), built without
# its legacy bundle and images; Jaeger v2.13.0 ships jaeger-ui v1.76. The trace page
# reads the same /api/traces/<id> JSON in both.
#
# Environment:
#   LEDGERFLOW_CACHE_DIR ($REPO/.cache)  where the unpacked assets are kept
set -euo pipefail
# shellcheck source=deploy/local/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

UI_MODULE=github.com/tonistiigi/jaeger-ui-rest
UI_MODULE_VERSION=v0.0.0-20250408171107-3dd17559e117
JAEGER_UI_VERSION=v1.68.0 # the jaeger-ui release that module version embeds
UI_HOME="$LEDGERFLOW_CACHE_DIR/jaeger-ui-$JAEGER_UI_VERSION"
UI_DIR="$UI_HOME/assets"
LOG_TAG="jaeger-ui"

need_go() {
  command -v go >/dev/null 2>&1 && return 0
  [[ -x /usr/local/go/bin/go ]] && { export PATH="/usr/local/go/bin:$PATH"; return 0; }
  die "Go is required to download $UI_MODULE from the Go module proxy"
}

cmd_fetch() {
  if [[ -s "$UI_DIR/index.html" ]]; then return 0; fi
  need_go
  mkdir -p "$UI_HOME"
  (
    flock 9
    if [[ -s "$UI_DIR/index.html" ]]; then exit 0; fi
    start="$(now)"
    log "downloading $UI_MODULE@$UI_MODULE_VERSION (Jaeger UI $JAEGER_UI_VERSION)"
    dir="$(GOFLAGS=-mod=mod go mod download -json "$UI_MODULE@$UI_MODULE_VERSION" \
      | python3 -c 'import json, sys; d = json.load(sys.stdin); print(d.get("Dir") or sys.exit(d.get("Error")))')" \
      || die "go mod download $UI_MODULE@$UI_MODULE_VERSION failed"
    [[ -f "$dir/public/index.html" ]] || die "$dir/public/index.html missing: not the expected module"
    rm -rf "$UI_DIR.tmp"
    mkdir -p "$UI_DIR.tmp"
    (
      cd "$dir/public"
      find . -type f -print0 | while IFS= read -r -d '' f; do
        mkdir -p "$UI_DIR.tmp/$(dirname "$f")"
        gzip -dc "$f" >"$UI_DIR.tmp/$f"
      done
    ) || die "could not unpack $dir/public"
    grep -q 'JAEGER_CONFIG = DEFAULT_CONFIG;' "$UI_DIR.tmp/index.html" \
      || die "$UI_DIR.tmp/index.html lacks the JAEGER_CONFIG line Jaeger's query service fills in"
    rm -rf "$UI_DIR"
    mv "$UI_DIR.tmp" "$UI_DIR"
    log "Jaeger UI $JAEGER_UI_VERSION in $UI_DIR after $(elapsed "$start")"
  ) 9>"$UI_HOME/.fetch.lock"
}

case "${1:-}" in
  fetch) cmd_fetch ;;
  path) cmd_fetch && echo "$UI_DIR" ;;
  *) echo "usage: $0 {fetch|path}" >&2; exit 2 ;;
esac
