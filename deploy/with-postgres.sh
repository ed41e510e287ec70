#!/usr/bin/env bash
# Run a command against a throwaway PostgreSQL: a private cluster in a temporary
# folder (deploy/postgres.sh), DATABASE_URL pointing at it, all removed afterwards.
# `make test` runs the whole suite a second time this way.
#
#   deploy/with-postgres.sh COMMAND [ARGS...]
set -euo pipefail
cd "$(dirname "$0")/.."

pg=$(mktemp -d)
trap 'deploy/postgres.sh remove "$pg" >/dev/null 2>&1 || true; rm -rf "$pg"' EXIT
DATABASE_URL=$(DIGITS_PG_FSYNC=${DIGITS_PG_FSYNC:-off} deploy/postgres.sh start "$pg" "${DIGITS_TEST_PG_PORT:-55432}")
export DATABASE_URL
echo "on PostgreSQL: $(psql --version | head -n 1), a private cluster on port ${DIGITS_TEST_PG_PORT:-55432}"
"$@"
