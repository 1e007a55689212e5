#!/usr/bin/env bash
# Run the conveyor server: the HTTP API and the pipeline's workers, on the local PostgreSQL.
# Starts (or installs) PostgreSQL if needed, creates the `conveyor` database once, applies
# the migrations, then serves on http://127.0.0.1:8080 until Ctrl-C.
# A development API key `dev-key` (tenant `demo`) is used unless CONVEYOR_API_KEYS is set.
# Extra arguments go to `conveyor serve` (see `conveyor serve --help`).
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/ensure-postgres.sh
export PGOPTIONS="-c client_min_messages=warning"
admin="${CONVEYOR_ADMIN_URL:-postgres://root@127.0.0.1:5432/postgres}"
if [ -z "${DATABASE_URL:-}" ]; then
    if ! psql "$admin" -tAc "select 1 from pg_database where datname = 'conveyor'" | grep -q 1; then
        psql "$admin" -qc 'create database conveyor'
    fi
    export DATABASE_URL="${admin%/*}/conveyor"
fi
export CONVEYOR_API_KEYS="${CONVEYOR_API_KEYS:-dev-key=demo}"

cargo build --release -q -p conveyor-server
target/release/conveyor migrate
echo "conveyor: serving on ${CONVEYOR_LISTEN:-127.0.0.1:8080} (Ctrl-C stops it); try:"
echo "  curl -s -XPOST localhost:8080/v1/events/bulk -H 'authorization: Bearer dev-key' -H 'content-type: application/json' \\"
echo "    -d '{\"events\":[{\"event_type\":\"signup\",\"actor_id\":\"u1\",\"source\":\"web\",\"timestamp\":\"'\$(date -u +%FT%TZ)'\",\"attributes\":{\"plan\":\"pro\"}}]}'"
exec target/release/conveyor serve "$@"
