#!/usr/bin/env bash
# Run the framework's example end to end: publish 10,000 orders across tenants, handle
# them with a worker pool (writes, emitted events, retries), print the queue stats, exit.
# Uses its own database, `conveyor_example`, recreated on every run.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/ensure-postgres.sh
export PGOPTIONS="-c client_min_messages=warning"
admin="${DATABASE_URL:-postgres://root@127.0.0.1:5432/postgres}"
psql "$admin" -qc 'drop database if exists conveyor_example' -c 'create database conveyor_example'
export DATABASE_URL="${admin%/*}/conveyor_example"
cargo run --release -q -p conveyor --example orders
