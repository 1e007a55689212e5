#!/usr/bin/env bash
# The whole test suite: unit, contract and integration tests against a real PostgreSQL
# (each test gets a fresh database), then the doctests.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/ensure-postgres.sh
# the dashboard's browser test drives headless Chromium through chromedriver
scripts/ensure-chromium.sh
export DATABASE_URL="${DATABASE_URL:-postgres://root@127.0.0.1:5432/postgres}"

if cargo nextest --version >/dev/null 2>&1; then
    cargo nextest run --workspace --no-fail-fast
else
    cargo test --workspace --no-fail-fast
fi
cargo test --workspace --doc
