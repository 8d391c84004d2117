#!/usr/bin/env bash
# Durable event-hook acks on the PostgreSQL store, one and two replicas, next to the
# embedded store, same load, one run. Starts its own PostgreSQL (Debian's postgresql
# package) in a temporary folder on 127.0.0.1, builds the dist binary, and loads
# each setup with wrk (Debian's wrk) and Okta's real delivery sample over HTTPS.
#
#   bash bench/postgres.sh            # 10 s per setup
#   DURATION=20s bash bench/postgres.sh
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
DURATION=${DURATION:-10s}
PGPORT=${PGPORT:-55432}
PGBIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
WORK=$(mktemp -d /tmp/hookwarden-pgbench.XXXXXX)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  runuser -u postgres -- "$PGBIN/pg_ctl" -D "$WORK/pg" -m immediate stop >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT

cargo build --profile dist --features jemalloc --quiet --bin hookwarden
chown postgres "$WORK" 2>/dev/null || chmod 777 "$WORK"
runuser -u postgres -- "$PGBIN/initdb" -D "$WORK/pg" -U postgres --auth=trust >/dev/null
runuser -u postgres -- "$PGBIN/pg_ctl" -D "$WORK/pg" -l "$WORK/pg.log" -w \
  -o "-p $PGPORT -k $WORK -c listen_addresses=127.0.0.1" start >/dev/null
psql -h 127.0.0.1 -p "$PGPORT" -U postgres -qc "CREATE DATABASE hookwarden" >/dev/null

# start NAME HTTPS_PORT ADMIN_PORT BACKEND: a replica in its own folder (own dev
# certificate, own JSONL sink file), the example config with env overrides.
start() {
  local dir=$WORK/$1
  mkdir -p "$dir/config" && cp config/hookwarden.toml "$dir/config/"
  (cd "$dir" && exec env HOOKWARDEN__LOG__LEVEL=warn \
    HOOKWARDEN__SERVER__LISTEN="127.0.0.1:$2" HOOKWARDEN__ADMIN__LISTEN="127.0.0.1:$3" \
    HOOKWARDEN__STORE__BACKEND="$4" \
    HOOKWARDEN__STORE__POSTGRES__URL="postgres://postgres@127.0.0.1:$PGPORT/hookwarden" \
    "$ROOT/target/dist/hookwarden" serve >"$dir/log" 2>&1) &
  PIDS+=($!)
  for _ in $(seq 100); do
    curl -fs "http://127.0.0.1:$3/readyz" >/dev/null && return 0
    sleep 0.1
  done
  echo "replica $1 did not become ready:" >&2; cat "$dir/log" >&2; exit 1
}

stop_all() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  PIDS=()
  PGOPTIONS=--client-min-messages=warning psql -h 127.0.0.1 -p "$PGPORT" -U postgres -qc "DROP SCHEMA public CASCADE; CREATE SCHEMA public" hookwarden >/dev/null
}

# load TAG PORT CONNS: prints "acks/s p50 p99 non-2xx"
load() {
  HOOKWARDEN_BENCH_TAG=$1 wrk -t1 -c"$3" -d"$DURATION" -s bench/okta-delivery.lua --latency \
    "https://127.0.0.1:$2/hooks/okta/events" |
    awk '/Requests\/sec/ {r=$2} /^ +50%/ {p50=$2} /^ +99%/ {p99=$2}
         /Non-2xx/ {bad=$NF} END {printf "%s %s %s %s\n", r, p50, p99, bad+0}'
}

printf '%-34s %10s %10s %10s %8s\n' setup acks/s p50 p99 non-2xx
start embedded 8443 9090 sqlite
read -r r p50 p99 bad < <(load 1 8443 64)
printf '%-34s %10s %10s %10s %8s\n' "embedded SQLite, 64 conns" "$r" "$p50" "$p99" "$bad"
stop_all
start pg1 8443 9090 postgres
read -r r p50 p99 bad < <(load 2 8443 64)
printf '%-34s %10s %10s %10s %8s\n' "PostgreSQL, 1 replica, 64 conns" "$r" "$p50" "$p99" "$bad"
stop_all
start pg2a 8443 9090 postgres
start pg2b 8444 9091 postgres
load 3 8443 32 >"$WORK/a" &
load 4 8444 32 >"$WORK/b"
wait %%
for f in a b; do
  read -r r p50 p99 bad <"$WORK/$f"
  printf '%-34s %10s %10s %10s %8s\n' "PostgreSQL, 2 replicas ($f), 32 conns" "$r" "$p50" "$p99" "$bad"
done
