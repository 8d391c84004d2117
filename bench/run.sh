#!/usr/bin/env bash
# hookwarden side by side with its null receiver (examples/null_receiver.rs: the same
# stack, storing nothing), adnanh/webhook, an Express receiver and nginx: one command.
# Installs what is missing (Debian's wrk, webhook, nginx, nodejs/npm, postgresql, pgbouncer; express
# from bench/receivers/package-lock.json; oha with cargo), builds the `dist` binaries
# (fat LTO: the container's build), then runs bench/run.py, which prints the tables and
# every goal with its ratio and verdict (also written to $OUT/results.md).
#
#   bash bench/run.sh                 # 3 rounds, 10 s per measurement, and the cold builds
#   QUICK=1 bash bench/run.sh         # 1 round, 3 s per measurement, 100,000 stored events
#   ROUNDS=5 DURATION=20 bash bench/run.sh
#   PHASES=acks,paced bash bench/run.sh   # a subset of acks, paced, conns, curve, store,
#                                         # inline, pg, build
#
# Run as root on a machine of its own: it loads every core, and the first run writes a
# million events (about 3 GB) to $PREFILL_DIR (default /tmp/hookwarden-bench-store-1000000-v5),
# which later runs reuse.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/sbin:/sbin:$HOME/.cargo/bin"

need=()
command -v wrk >/dev/null || need+=(wrk)
command -v webhook >/dev/null || need+=(webhook)
command -v nginx >/dev/null || need+=(nginx)
command -v node >/dev/null || need+=(nodejs)
command -v npm >/dev/null || need+=(npm)
command -v openssl >/dev/null || need+=(openssl)
compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || need+=(postgresql)
[ -x /usr/sbin/pgbouncer ] || need+=(pgbouncer)
if ((${#need[@]})); then
  echo "installing ${need[*]}" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
command -v oha >/dev/null || cargo install --locked oha
[ -d bench/receivers/node_modules/express ] ||
  (cd bench/receivers && npm ci --no-audit --no-fund --loglevel=error)

cargo build --profile dist --features jemalloc --quiet --bin hookwarden --example prefill --example null_receiver
exec python3 bench/run.py
