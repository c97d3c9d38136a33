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

# Debian's redis-server for the shared rate-limit tests (each test starts its own on a free port).
if ! command -v redis-server >/dev/null 2>&1; then
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing Debian's redis-server for the shared rate-limit tests…"
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null) \
      || echo "redis-server could not be installed: the shared rate-limit tests will skip"
  else
    echo "redis-server not found and cannot be installed here: the shared rate-limit tests will skip"
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
