#!/usr/bin/env bash
# System packages the test suite needs beyond the Python venv: headless Chromium
# for the browser checks (tests/test_report_browser.py, and tests/test_jupyterlab_browser.py
# through Playwright, which drives this chromium: no browser is downloaded), and a colour emoji
# font so emoji in conversation titles render in its screenshots, and psql
# (postgresql-client) to restore the PostgreSQL sample dumps in fixtures/. Idempotent:
# does nothing when both are already there. Needs root (CI runs as root).
set -euo pipefail

EMOJI_FONT=/usr/share/fonts/truetype/noto/NotoColorEmoji.ttf
if command -v chromium >/dev/null 2>&1 && [ -f "$EMOJI_FONT" ] && command -v psql >/dev/null 2>&1; then
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core fonts-noto-color-emoji \
  postgresql-client >/dev/null
command -v chromium >/dev/null && command -v psql >/dev/null
