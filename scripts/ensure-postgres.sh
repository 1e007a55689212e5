#!/usr/bin/env bash
# Make sure PostgreSQL answers on 127.0.0.1:5432 for the `root` role without a password,
# which is what DATABASE_URL in .cargo/config.toml expects. Installs it when missing,
# starts it when down, and on a fresh install creates the role and trusts loopback.
set -euo pipefail

url="${DATABASE_URL:-postgres://root@127.0.0.1:5432/postgres}"
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

if ! command -v pg_ctlcluster >/dev/null 2>&1; then
    echo "ensure-postgres: installing postgresql" >&2
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
fi

version="$(ls /etc/postgresql | sort -V | tail -n 1)"
if ! pg_isready -q -h 127.0.0.1 -p 5432; then
    echo "ensure-postgres: starting PostgreSQL $version" >&2
    as_root pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
    for _ in $(seq 1 60); do
        pg_isready -q -h 127.0.0.1 -p 5432 && break
        sleep 0.5
    done
fi
pg_isready -q -h 127.0.0.1 -p 5432 || { echo "ensure-postgres: PostgreSQL did not start" >&2; exit 1; }

if ! psql "$url" -qAtc 'select 1' >/dev/null 2>&1; then
    echo "ensure-postgres: creating role root and trusting loopback connections" >&2
    hba="/etc/postgresql/$version/main/pg_hba.conf"
    as_root sed -i -E 's/^(host\s+all\s+all\s+(127\.0\.0\.1\/32|::1\/128)\s+)\S+/\1trust/' "$hba"
    as_root runuser -u postgres -- psql -qc "do \$\$ begin
        if not exists (select from pg_roles where rolname = 'root') then
            create role root superuser login;
        end if; end \$\$;"
    as_root pg_ctlcluster --skip-systemctl-redirect "$version" main reload
    sleep 1
    psql "$url" -qAtc 'select 1' >/dev/null
fi
