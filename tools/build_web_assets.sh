#!/usr/bin/env bash
# Install the pages' front-end files from the npm registry (pinned by tools/web-assets/package-lock.json)
# and copy them into cardsvc/web/static/vendor/ (gitignored), where the pages serve them locally:
#   jsQR.js      QR decoder for the partner base's camera page
#   axe.min.js   axe-core, the accessibility checks of the browser tests
# Run by tools/dev.sh before tests and the demo; pages say in the page when a file is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

src=tools/web-assets
dest=cardsvc/web/static/vendor
stamp=$dest/.installed

log() { printf '[build_web_assets] %s\n' "$*" >&2; }

if [ -f "$stamp" ] && [ "$stamp" -nt "$src/package-lock.json" ] && [ "${1:-}" != "--force" ]; then
  exit 0
fi
command -v npm >/dev/null || { log "npm not found: install Debian's 'npm' (tools/dev.sh does as root)"; exit 1; }
log "npm ci in $src"
(cd "$src" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error)
mkdir -p "$dest"
cp "$src/node_modules/jsqr/dist/jsQR.js" "$dest/jsQR.js"
cp "$src/node_modules/axe-core/axe.min.js" "$dest/axe.min.js"
for pkg in jsqr axe-core; do
  cp "$src/node_modules/$pkg/LICENSE" "$dest/LICENSE.$pkg" 2>/dev/null || true
done
touch "$stamp"
log "installed: $(cd "$dest" && ls | tr '\n' ' ')"
