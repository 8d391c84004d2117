#!/usr/bin/env bash
# Dependencies against the RustSec advisory database, with cargo-deny (deny.toml says what
# is checked and every exception with its reason): advisories, bans and sources, for the
# service's Cargo.lock and the fuzz crate's fuzz/Cargo.lock.
#
#   scripts/advisories.sh
#
# Which database: the live one when `cargo deny fetch db` can reach it; otherwise the
# offline copy at ../shared/rustsec/advisory-db.bundle (a git bundle, as CI has beside the
# clone; ADVISORY_DB_BUNDLE names another); otherwise none, said loudly, and the bans and
# sources are checked alone. The output names the database and the date of its newest
# advisory: a copy misses what was published after it.
#
# Before the project, a canary proves that the check bites: a scratch crate that locks
# smallvec 1.6.0 (RUSTSEC-2021-0003, a buffer overflow fixed in 1.6.1) must fail the same
# command. A check that passed it would pass anything.
#
# Needs cargo-deny (scripts/test.sh installs it) and git.
set -euo pipefail
cd "$(dirname "$0")/.."

# cargo-deny keeps its databases under $CARGO_HOME/advisory-dbs, in a folder named after
# the database's URL; this is the name it gives the default RustSec URL (cargo-deny 0.20).
db_root="${CARGO_HOME:-$HOME/.cargo}/advisory-dbs"
db="$db_root/advisory-db-3157b0e258782691"
bundle="${ADVISORY_DB_BUNDLE:-../shared/rustsec/advisory-db.bundle}"

# A copy this script made from the bundle is no live database: remove it, so that a fetch
# that succeeds below is cargo-deny's own, from the network.
if git -C "$db" remote get-url origin 2>/dev/null | grep -q '\.bundle$'; then
  rm -rf "$db"
fi

offline=()
if timeout 120 cargo deny fetch db >/dev/null 2>&1 && [ -d "$db" ]; then
  source="the live RustSec database (fetched now)"
elif [ -f "$bundle" ]; then
  rm -rf "$db"
  mkdir -p "$db_root"
  git -c init.defaultBranch=main clone --quiet "$bundle" "$db"
  source="the offline copy $(realpath "$bundle")"
  # --offline: cargo-deny neither fetches the database nor asks crates.io about yanks.
  offline=(--offline)
else
  echo "WARNING: the RustSec advisory database can neither be fetched nor found at $bundle:"
  echo "WARNING: advisories NOT checked, bans and sources only"
  cargo deny --log-level error check bans sources
  cargo deny --manifest-path fuzz/Cargo.toml --config deny.toml --log-level error check bans sources
  exit 0
fi

newest=$(grep -rhoE '^date = "[0-9]{4}-[0-9]{2}-[0-9]{2}"' "$db/crates" | cut -d'"' -f2 | sort | tail -1)
commit=$(git -C "$db" log -1 --format='%h, committed %cs')
echo "advisories: checked against $source ($commit; newest advisory $newest)"

# The canary: a known advisory must fail the same command.
canary=$(mktemp -d)
trap 'rm -rf "$canary"' EXIT
mkdir -p "$canary/src"
touch "$canary/src/lib.rs"
cat >"$canary/Cargo.toml" <<'EOF'
[package]
name = "advisory-canary"
version = "0.0.0"
edition = "2021"
publish = false

[dependencies]
smallvec = "=1.6.0"

[workspace]
EOF
cargo generate-lockfile --quiet --manifest-path "$canary/Cargo.toml"
# --offline reaches `cargo metadata` too: every crate must be downloaded beforehand.
cargo fetch --quiet --manifest-path "$canary/Cargo.toml"
cargo fetch --quiet --locked --manifest-path fuzz/Cargo.toml
cargo fetch --quiet --locked
if canary_out=$(cargo deny "${offline[@]}" --manifest-path "$canary/Cargo.toml" --config deny.toml \
  --log-level error check advisories 2>&1); then
  echo "advisories: the canary (smallvec 1.6.0, RUSTSEC-2021-0003) PASSED the check: the check is broken" >&2
  exit 1
fi
if ! grep -q 'RUSTSEC-2021-0003' <<<"$canary_out"; then
  echo "advisories: the canary failed, but not on RUSTSEC-2021-0003:" >&2
  echo "$canary_out" >&2
  exit 1
fi
echo "advisories: the canary (smallvec 1.6.0) fails the check on RUSTSEC-2021-0003, as it must"

cargo deny "${offline[@]}" --log-level error check advisories bans sources
cargo deny "${offline[@]}" --manifest-path fuzz/Cargo.toml --config deny.toml --log-level error \
  check advisories bans sources
echo "advisories: Cargo.lock and fuzz/Cargo.lock pass"
