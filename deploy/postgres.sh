#!/usr/bin/env bash
# A private PostgreSQL cluster on loopback: for CI's second test run and for
# `manage.py cluster`. Debian's server binaries, a data folder of our own, and a
# role `digits` (allowed to create databases: the tests make their own).
#
#   deploy/postgres.sh start DIR PORT    # prints the DATABASE_URL
#   deploy/postgres.sh stop DIR
#
# DIGITS_PG_FSYNC=off (CI) trades crash safety for speed: for throwaway clusters only.
#
# The server refuses to run as root, so as root it runs as the `postgres` user
# that Debian's package creates, and DIR becomes that user's.
set -euo pipefail

usage() { echo "usage: $0 start DIR PORT | stop DIR" >&2; exit 2; }
[ $# -ge 2 ] || usage
command=$1
dir=$(mkdir -p "$2" && cd "$2" && pwd)

bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
if [ -z "$bin" ]; then
  bin=$(dirname "$(command -v pg_ctl 2>/dev/null || true)")
fi
[ -x "$bin/pg_ctl" ] || { echo "PostgreSQL's server is not installed (apt-get install postgresql)" >&2; exit 1; }

as=()
if [ "$(id -u)" = 0 ]; then
  as=(runuser -u postgres --)
  chown postgres: "$dir"
fi
chmod 700 "$dir"

case "$command" in
  start)
    [ $# -eq 3 ] || usage
    port=$3
    if [ ! -f "$dir/data/PG_VERSION" ]; then
      # The socket lives in DIR (0700): only its owner connects without a password.
      "${as[@]}" "$bin/initdb" --pgdata "$dir/data" --username postgres --encoding UTF8 \
        --locale C --auth-local trust --auth-host scram-sha-256 >"$dir/initdb.log"
      head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$dir/password"
      [ ${#as[@]} -eq 0 ] || chown postgres: "$dir/password"
      chmod 600 "$dir/password"
      fresh=1
    fi
    if ! "${as[@]}" "$bin/pg_ctl" --pgdata "$dir/data" status >/dev/null 2>&1; then
      "${as[@]}" "$bin/pg_ctl" --pgdata "$dir/data" --log "$dir/server.log" --wait --silent \
        -o "-c listen_addresses=127.0.0.1 -p $port -k $dir -c max_connections=200" \
        -o "-c fsync=${DIGITS_PG_FSYNC:-on} -c synchronous_commit=${DIGITS_PG_FSYNC:-on}" \
        start >/dev/null
    fi
    password=$(cat "$dir/password")
    if [ "${fresh:-0}" = 1 ]; then
      "${as[@]}" "$bin/psql" -h "$dir" -p "$port" -U postgres -d postgres -qAt -v ON_ERROR_STOP=1 \
        -c "CREATE ROLE digits LOGIN CREATEDB PASSWORD '$password'" \
        -c "CREATE DATABASE digits OWNER digits" >/dev/null
    fi
    echo "postgres://digits:$password@127.0.0.1:$port/digits"
    ;;
  stop)
    if [ -f "$dir/data/postmaster.pid" ]; then
      "${as[@]}" "$bin/pg_ctl" --pgdata "$dir/data" --mode fast --wait --silent stop
    fi
    ;;
  *) usage ;;
esac
