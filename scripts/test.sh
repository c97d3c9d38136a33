#!/usr/bin/env bash
# Install everything the test suite needs into .venv, then run lint, types, layer contract, tests and toy benches.
# Usage: bash scripts/test.sh [extra pytest args]
set -euo pipefail
cd "$(dirname "$0")/.."

# Headless Chromium for the browser tests (Debian's package; Playwright drives it, never downloads its own).
if ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing Debian's chromium for the browser tests…"
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
      || echo "chromium could not be installed: browser tests will skip"
  else
    echo "chromium not found and cannot be installed here: browser tests will skip"
  fi
fi

# Debian's redis-server (shared rate limits, the cluster test: each test starts its own on a free port) and
# caddy (tests/test_deploy_files.py validates deploy/Caddyfile and runs it in front of a real serve).
missing=""
command -v redis-server >/dev/null 2>&1 || missing="$missing redis-server"
command -v caddy >/dev/null 2>&1 || missing="$missing caddy"
if [ -n "$missing" ]; then
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing Debian's$missing for the tests…"
    # shellcheck disable=SC2086
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null) \
      || echo "$missing could not be installed: the tests that need them will skip"
  else
    echo "$missing not found and cannot be installed here: the tests that need them will skip"
  fi
fi

if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e '.[test]'

export PATH="$PWD/.venv/bin:$PATH"
# one command per line: under `set -e` a failure on the left of `&&` would not stop the script
echo "== ruff";        ruff check paperboy tests bench scripts
ruff format --check paperboy tests bench scripts
echo "== mypy";        mypy
echo "== import layers"; lint-imports
echo "== pytest";      pytest "$@"
echo "== benches (toy size)"
if [ -d ../shared/data/arxiv_metadata ]; then
  python bench/ingest.py --limit 2000
  python bench/digest.py --subscribers 200 --papers 3000 --topics 50
else
  echo "(../shared/data absent: benching on the repo's own small fixture)"
  python bench/ingest.py --file tests/fixtures/arxiv_listing_small.jsonl
fi
