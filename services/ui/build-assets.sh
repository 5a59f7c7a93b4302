#!/usr/bin/env bash
# Vendor the UI's third-party browser libraries from npm into the static folder.
#
#   services/ui/build-assets.sh        (make ui-assets; make up and make test run it)
#
# The versions are pinned by package-lock.json; `npm ci` runs only when the lock file
# changed since the last install (node_modules/ is a cache, git-ignored), so a cached
# run takes milliseconds. The copied files (static/vendor/) are committed as well: the
# Python wheel (hatch leaves git-ignored files out) and the Docker image are built
# without Node, and they are small (dagre.min.js: about 50 KB). This script rewrites
# them from what the lock file pins (and says so), so they cannot drift unnoticed.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
VENDOR=src/ledgerflow/ui/static/vendor
mkdir -p "$VENDOR"
if ! command -v npm >/dev/null 2>&1; then
  echo "ui-assets: npm not found; using the committed $VENDOR files" >&2
  exit 0
fi
stamp=node_modules/.package-lock.json
if [[ ! -f "$stamp" || package-lock.json -nt "$stamp" ]]; then
  npm ci --no-audit --no-fund --loglevel=error
  touch "$stamp"
fi
copy() {  # copy SRC DEST: only when different, and say so
  if ! cmp -s "$1" "$2"; then
    cp "$1" "$2"
    echo "ui-assets: updated $2" >&2
  fi
}
tmp="$(mktemp)"
trap 'rm -f "$tmp"' EXIT
# The source map is not vendored: drop its reference so browsers do not ask for it.
sed '/^\/\/# sourceMappingURL=/d' node_modules/@dagrejs/dagre/dist/dagre.min.js >"$tmp"
copy "$tmp" "$VENDOR/dagre.min.js"
copy node_modules/@dagrejs/dagre/dist/dagre.min.js.LEGAL.txt "$VENDOR/dagre.LICENSE.txt"
