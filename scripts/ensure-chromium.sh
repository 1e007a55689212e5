#!/usr/bin/env bash
# Make sure headless Chromium and its WebDriver (`chromium`, `chromedriver`) are installed,
# for the dashboard's browser test (tests/integration/tests/it/dashboard.rs). Installs
# Debian's `chromium` and `chromium-driver` when either is missing; does nothing otherwise.
set -euo pipefail

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

if command -v chromedriver >/dev/null 2>&1 \
    && { command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1; }; then
    exit 0
fi
echo "ensure-chromium: installing chromium and chromium-driver" >&2
as_root apt-get update -qq
as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null
command -v chromedriver >/dev/null 2>&1 || { echo "ensure-chromium: chromedriver is still missing" >&2; exit 1; }
