#!/usr/bin/env bash
# What the browser test (tests/browser) needs beyond the Python packages:
# Debian's Chromium at /usr/bin/chromium (Playwright drives it and never
# downloads a browser of its own) and a font with Chinese glyphs, without which
# the page and its screenshot show empty boxes. Idempotent, silent when both
# are already there.
set -euo pipefail

need=()
[ -x /usr/bin/chromium ] || need+=(chromium)
if ! command -v fc-list >/dev/null 2>&1 || [ -z "$(fc-list :lang=zh 2>/dev/null)" ]; then
  need+=(fonts-wqy-microhei fontconfig)
fi
[ ${#need[@]} -eq 0 ] && exit 0

if ! command -v apt-get >/dev/null 2>&1; then
  echo "browser_deps: missing ${need[*]} and there is no apt-get; install them by hand." >&2
  exit 1
fi
SUDO=()
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then
    SUDO=(sudo)
  else
    echo "browser_deps: installing ${need[*]} needs root (apt-get install ${need[*]})." >&2
    exit 1
  fi
fi
echo "Installing for the browser test: ${need[*]}"
export DEBIAN_FRONTEND=noninteractive
log=$(mktemp)
if ! { "${SUDO[@]}" apt-get update -qq && "${SUDO[@]}" apt-get install -y -qq --no-install-recommends "${need[@]}"; } >"$log" 2>&1; then
  cat "$log" >&2
  echo "browser_deps: apt-get install ${need[*]} failed" >&2
  exit 1
fi
rm -f "$log"
[ -x /usr/bin/chromium ] || { echo "browser_deps: /usr/bin/chromium still missing after install" >&2; exit 1; }
