#!/usr/bin/env bash
# Install what is missing (dev packages, Debian's chromium), lint with ruff, then run the whole suite.
source "$(dirname "${BASH_SOURCE[0]}")/setup_env.sh"
ensure_venv requirements-dev.txt
if ! command -v chromium >/dev/null 2>&1 || ! command -v chromedriver >/dev/null 2>&1 \
   || [ ! -f /usr/share/fonts/truetype/noto/NotoColorEmoji.ttf ]; then
  echo "[setup] installing Debian's chromium, chromium-driver and an emoji font for the browser tests"
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq \
    chromium chromium-driver fonts-noto-color-emoji >/dev/null
fi
export DDCORE_OFFLINE="${DDCORE_OFFLINE:-1}"
.venv/bin/python -m ruff check . || exit 1  # a lint finding fails the command before any test runs
if [ $# -gt 0 ]; then
  exec .venv/bin/python -m pytest "$@"  # the tests asked for, in one process (add -n 2 --dist loadfile for two workers)
fi
# The whole suite in two phases. Engine and page tests on two workers (pytest-xdist, one file per worker at a time,
# so a module's fixtures start once): most of them use one core, and the other sat idle. Then the Chromium tests
# alone, in one process: they time page loads and a job's rate, which a second worker's load would distort.
status=0
.venv/bin/python -m pytest -n 2 --dist loadfile -m "not browser" || status=$?
.venv/bin/python -m pytest -m browser || status=$?
exit "$status"
