#!/usr/bin/env bash
# What the tests need beyond the Python packages, from Debian's packages:
# Chromium at /usr/bin/chromium for the browser test (Playwright drives it and
# never downloads a browser of its own), a font with Chinese glyphs, without
# which the page and its screenshot show empty boxes, and nginx, the proxy in
# front of the replicas (tests/integration/test_replicas.py). Idempotent,
# silent when all are already there.
set -euo pipefail

need=()
[ -x /usr/bin/chromium ] || need+=(chromium)
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || need+=(nginx-light)
if ! command -v fc-list >/dev/null 2>&1 || [ -z "$(fc-list :lang=zh 2>/dev/null)" ]; then
  need+=(fonts-wqy-microhei fontconfig)
fi
[ ${#need[@]} -eq 0 ] && exit 0

if ! command -v apt-get >/dev/null 2>&1; then
  echo "system_deps: missing ${need[*]} and there is no apt-get; install them by hand." >&2
  exit 1
fi
SUDO=()
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then
    SUDO=(sudo)
  else
    echo "system_deps: installing ${need[*]} needs root (apt-get install ${need[*]})." >&2
    exit 1
  fi
fi
echo "Installing for the tests: ${need[*]}"
export DEBIAN_FRONTEND=noninteractive
log=$(mktemp)
if ! { "${SUDO[@]}" apt-get update -qq && "${SUDO[@]}" apt-get install -y -qq --no-install-recommends "${need[@]}"; } >"$log" 2>&1; then
  cat "$log" >&2
  echo "system_deps: apt-get install ${need[*]} failed" >&2
  exit 1
fi
rm -f "$log"
[ -x /usr/bin/chromium ] || { echo "system_deps: /usr/bin/chromium still missing after install" >&2; exit 1; }
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || { echo "system_deps: nginx still missing after install" >&2; exit 1; }
