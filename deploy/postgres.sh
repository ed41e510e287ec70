#!/usr/bin/env bash
# A private PostgreSQL cluster on loopback: for CI's second test run and for
# `manage.py cluster`. Debian's server binaries, a data folder of our own, and a
# role `digits` (allowed to create databases: the tests make their own).
#
#   deploy/postgres.sh start DIR PORT    # prints the DATABASE_URL
#   deploy/postgres.sh stop DIR
#   deploy/postgres.sh remove DIR        # stop, and delete its data
#
# DIGITS_PG_FSYNC=off (CI) trades crash safety for speed: for throwaway clusters only.
#
# The server refuses to run as root, so as root it runs as the `postgres` user
# that Debian's package creates, and DIR becomes that user's.
set -euo pipefail

usage() { echo "usage: $0 start DIR PORT | stop DIR | remove DIR" >&2; exit 2; }
[ $# -ge 2 ] || usage
command=$1
dir=$(mkdir -p "$2" && cd "$2" && pwd)

bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
if [ -z "$bin" ]; then
  bin=$(dirname "$(command -v pg_ctl 2>/dev/null || true)")
fi
[ -x "$bin/pg_ctl" ] || { echo "PostgreSQL's server is not installed (apt-get install postgresql)" >&2; exit 1; }

# Where the cluster lives: DIR itself, or, when we are root and the `postgres` user
# cannot reach DIR (a parent folder is private, as pytest's and the data folder
# are), a folder of that user's named after DIR.
as=()
home="$dir"
if [ "$(id -u)" = 0 ]; then
  as=(runuser -u postgres --)
  chown postgres: "$dir"
  if ! runuser -u postgres -- test -x "$dir"; then
    home="$(getent passwd postgres | cut -d: -f6)/digits-$(printf %s "$dir" | sha256sum | cut -c1-16)"
    mkdir -p "$home"
    chown postgres: "$home"
  fi
fi
chmod 700 "$home"

case "$command" in
  start)
    [ $# -eq 3 ] || usage
    port=$3
    if [ ! -f "$home/data/PG_VERSION" ]; then
      # The socket lives in the cluster's folder (0700): only its owner connects
      # without a password; everyone else needs the role's.
      "${as[@]}" "$bin/initdb" --pgdata "$home/data" --username postgres --encoding UTF8 \
        --locale C --auth-local trust --auth-host scram-sha-256 >"$home/initdb.log"
      head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$home/password"
      [ ${#as[@]} -eq 0 ] || chown postgres: "$home/password"
      chmod 600 "$home/password"
      fresh=1
    fi
    if ! "${as[@]}" "$bin/pg_ctl" --pgdata "$home/data" status >/dev/null 2>&1; then
      "${as[@]}" "$bin/pg_ctl" --pgdata "$home/data" --log "$home/server.log" --wait --silent \
        -o "-c listen_addresses=127.0.0.1 -p $port -k $home -c max_connections=200" \
        -o "-c fsync=${DIGITS_PG_FSYNC:-on} -c synchronous_commit=${DIGITS_PG_FSYNC:-on}" \
        start >/dev/null
    fi
    password=$(cat "$home/password")
    if [ "${fresh:-0}" = 1 ]; then
      "${as[@]}" "$bin/psql" -h "$home" -p "$port" -U postgres -d postgres -qAt -v ON_ERROR_STOP=1 \
        -c "CREATE ROLE digits LOGIN CREATEDB PASSWORD '$password'" \
        -c "CREATE DATABASE digits OWNER digits" >/dev/null
    fi
    echo "postgres://digits:$password@127.0.0.1:$port/digits"
    ;;
  stop|remove)
    if [ -f "$home/data/postmaster.pid" ]; then
      "${as[@]}" "$bin/pg_ctl" --pgdata "$home/data" --mode fast --wait --silent stop
    fi
    if [ "$command" = remove ]; then
      rm -rf "$home"
      [ "$home" = "$dir" ] || rm -rf "$dir"
    fi
    ;;
  *) usage ;;
esac
