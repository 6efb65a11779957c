#!/bin/sh
# Creates Temporal's two PostgreSQL databases and brings their schemas to the image's version, with the
# admin-tools image's temporal-sql-tool (Temporal's documented way for the temporalio/server image, which
# never touches its schema itself). Safe to run on every start: create is skipped for a database that
# exists, and update-schema applies only the versions not yet applied.
set -eu
: "${POSTGRES_SEEDS:?}" "${POSTGRES_USER:?}" "${SQL_PASSWORD:?}"
port="${DB_PORT:-5432}"
schema=/etc/temporal/schema/postgresql/v12
for pair in "temporal:temporal" "temporal_visibility:visibility"; do
    db="${pair%%:*}"
    dir="${pair##*:}"
    tool="temporal-sql-tool --plugin postgres12 --ep $POSTGRES_SEEDS -p $port -u $POSTGRES_USER --db $db"
    if $tool create-database; then
        $tool setup-schema -v 0.0  # a new database: the versioning tables, then every version below
    else
        echo "database $db exists; updating its schema"
    fi
    $tool update-schema -d "$schema/$dir/versioned"
done
