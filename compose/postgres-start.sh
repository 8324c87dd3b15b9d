#!/bin/sh
# The ha profile's PostgreSQL (compose/Dockerfile, stage postgres): on the first start,
# a cluster in $PGDATA with the role and database the brokers use (SYN_PG_PASSWORD,
# scram-sha-256 over the network, nothing else), then the server in the foreground,
# given this script's arguments after its own (a later -c wins: make compose-test
# listens on 127.0.0.1 only). psql and pg_isready inside take PGPORT as the server does.
set -eu
if [ ! -s "$PGDATA/PG_VERSION" ]; then
    pwfile=$(mktemp)
    printf '%s\n' "${SYN_PG_PASSWORD:?set SYN_PG_PASSWORD}" > "$pwfile"
    initdb -D "$PGDATA" -U postgres --auth-local=peer --auth-host=scram-sha-256 \
        --pwfile="$pwfile" >/dev/null
    echo "host all all all scram-sha-256" >> "$PGDATA/pg_hba.conf"
    pg_ctl -D "$PGDATA" -o "-c listen_addresses=''" -w start >/dev/null
    psql -qv ON_ERROR_STOP=1 -U postgres -d postgres \
        -c "CREATE ROLE syn LOGIN PASSWORD '$(cat "$pwfile")'" \
        -c "CREATE DATABASE syn OWNER syn"
    pg_ctl -D "$PGDATA" -m fast -w stop >/dev/null
    rm -f "$pwfile"
fi
exec postgres -D "$PGDATA" -c listen_addresses='*' "$@"
