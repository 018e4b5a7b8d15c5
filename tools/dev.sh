#!/usr/bin/env bash
# The README's two set-up commands:
#   tools/dev.sh demo   run the service on embedded defaults (SQLite, file key store, virtual readers)
#   tools/dev.sh test   run the whole test suite (lint, types, layer contracts, pytest)
# Both install what they need on a fresh Debian machine (Debian packages when run as root, a .venv).
set -euo pipefail
cd "$(dirname "$0")/.."

DEB_PACKAGES=(pcscd vsmartcard-vpcd libpcsclite-dev swig softhsm2 zbar-tools libzbar0
              postgresql python3-venv util-linux iproute2
              poppler-utils fonts-droid-fallback fonts-dejavu-core docker-compose
              chromium)  # chromium: the web pages' browser tests (Playwright never downloads one)

log() { printf '[dev.sh] %s\n' "$*" >&2; }

ensure_debian_packages() {
  command -v dpkg-query >/dev/null || { log "not a Debian system: install ${DEB_PACKAGES[*]} yourself"; return; }
  local missing=()
  for pkg in "${DEB_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return
  if [ "$(id -u)" -ne 0 ]; then
    log "missing Debian packages: ${missing[*]} (run as root once, or: sudo apt-get install ${missing[*]})"
    return
  fi
  log "installing Debian packages: ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

ensure_web_assets() {  # npm (Debian's package unless a Node.js with npm is already there), then the files
  if ! command -v npm >/dev/null && [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
    log "installing Debian package: npm"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends npm >/dev/null
  fi
  tools/build_web_assets.sh
}

ensure_venv() {
  local stamp=.venv/.cardsvc-installed
  if [ ! -x .venv/bin/python ]; then
    log "creating .venv"
    python3 -m venv .venv
  fi
  if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
    log "installing cardsvc and its development dependencies into .venv"
    .venv/bin/python -m pip install -q --upgrade pip
    .venv/bin/python -m pip install -q -e '.[dev]'
    touch "$stamp"
  fi
}

run_tests() {
  export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1
  export PATH="$PWD/.venv/bin:$PATH"
  log "ruff";   ruff check cardsvc tests tools
  log "mypy";   mypy
  log "layers"; lint-imports
  log "pytest"; pytest "$@"
}

run_demo() {
  export PATH="$PWD/.venv/bin:$PATH"
  exec python -m cardsvc.demo "$@"
}

cmd=${1:-}
shift || true
case "$cmd" in
  test) ensure_debian_packages; ensure_venv; ensure_web_assets; run_tests "$@" ;;
  demo) ensure_debian_packages; ensure_venv; ensure_web_assets; run_demo "$@" ;;
  *) echo "usage: tools/dev.sh demo|test [args]" >&2; exit 2 ;;
esac
