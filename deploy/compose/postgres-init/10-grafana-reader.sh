#!/bin/sh
# Runs once, when the PostgreSQL volume is first initialised (docker-entrypoint-initdb.d): the
# login of Grafana's read-only role. Only the login lives here (a password is a secret, and
# migrations carry none); the pipeline's migration 012_reader_role.sql, run later as the owner,
# keeps the role, gives it its timeouts and its SELECT grants on exactly the dashboards' tables,
# and no access to raw dead-letter payloads.
set -eu
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
     -v pw="$GRAFANA_DB_PASSWORD" <<'EOSQL'
CREATE ROLE parrotwatch_reader LOGIN PASSWORD :'pw';
EOSQL
