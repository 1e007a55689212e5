#!/usr/bin/env bash
# Run the conveyor server: the HTTP API and the pipeline's workers, on the embedded SQLite
# database (./conveyor-data/conveyor.db, created on first run): no database server needed.
# Serves on http://127.0.0.1:8080 until Ctrl-C.
# A development API key `dev-key` (tenant `demo`) is used unless CONVEYOR_API_KEYS is set,
# and an operator key `dev-operator-key` (for /healthz/detailed) unless CONVEYOR_OPERATOR_KEYS is.
# To run on PostgreSQL instead, export DATABASE_URL=postgres://… (or pass --database-url).
# Extra arguments go to `conveyor serve` (see `conveyor serve --help`).
set -euo pipefail
cd "$(dirname "$0")/.."

export CONVEYOR_API_KEYS="${CONVEYOR_API_KEYS:-dev-key=demo}"
export CONVEYOR_OPERATOR_KEYS="${CONVEYOR_OPERATOR_KEYS:-dev-operator-key}"

cargo build --release -q -p conveyor-server
if [ -n "${DATABASE_URL:-}" ]; then
    where="the database in DATABASE_URL"
else
    where="${CONVEYOR_DATA_DIR:-./conveyor-data}/conveyor.db"
fi
echo "conveyor: serving on ${CONVEYOR_LISTEN:-127.0.0.1:8080} from $where (Ctrl-C stops it); try:"
echo "  curl -s -XPOST localhost:8080/v1/events/bulk -H 'authorization: Bearer dev-key' -H 'content-type: application/json' \\"
echo "    -d '{\"events\":[{\"event_type\":\"signup\",\"actor_id\":\"u1\",\"source\":\"web\",\"timestamp\":\"'\$(date -u +%FT%TZ)'\",\"attributes\":{\"plan\":\"pro\"}}]}'"
exec target/release/conveyor serve "$@"
