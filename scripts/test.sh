#!/usr/bin/env bash
# The whole test suite, on a fresh machine: formatting, lints, dependency checks, unit and
# integration tests, bounded fuzzing, and the container image built, run and checked.
# Needs a Rust toolchain (cargo with rustfmt and clippy; a nightly for cargo-fuzz) and
# root (PostgreSQL via runuser, a tmpfs for the disk-full test, podman); installs the rest.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v cargo >/dev/null || { echo "cargo is required (https://rustup.rs)"; exit 1; }

# The tests start a real PostgreSQL, a real PgBouncer and a real nats-server on loopback
# themselves; they need the binaries. Install them from Debian's packages when they are missing.
need=()
compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || need+=(postgresql)
command -v nats-server >/dev/null || need+=(nats-server)
[ -x /usr/sbin/pgbouncer ] || command -v pgbouncer >/dev/null || need+=(pgbouncer)
# The admin page test drives headless Chromium through chromedriver.
command -v chromium >/dev/null || need+=(chromium)
command -v chromedriver >/dev/null || need+=(chromium-driver)
command -v systemd-analyze >/dev/null || need+=(systemd)
# The alert rules' checks and unit tests (tests/it/monitoring.rs) run promtool.
command -v promtool >/dev/null || need+=(prometheus)
command -v pip3 >/dev/null || need+=(python3-pip)
if [ ${#need[@]} -gt 0 ]; then
  echo "installing ${need[*]} for the integration tests"
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}" >/dev/null
  # Debian's prometheus package (wanted for promtool alone) starts a Prometheus server on
  # :9090, the admin listener's default port: stop it where systemd runs.
  if [[ " ${need[*]} " == *" prometheus "* ]] && [ -d /run/systemd/system ]; then
    $sudo systemctl disable --now prometheus prometheus-node-exporter >/dev/null 2>&1 || true
  fi
fi
# The deployment examples' schema check (tests/it/deploy.rs), from PyPI.
command -v kubernetes-validate >/dev/null ||
  pip3 install -q --disable-pip-version-check kubernetes-validate 2>/dev/null ||
  pip3 install -q --disable-pip-version-check --break-system-packages kubernetes-validate
cargo fmt --all -- --check
cargo clippy --all-targets --locked -- -D warnings

# Dependencies (deny.toml, SECURITY.md "Dependencies"): RustSec advisories, bans and
# sources of Cargo.lock and fuzz/Cargo.lock, against the live database or the offline copy
# in ../shared (CI has it); it names the one it used and its date, and says loudly when
# there is none.
command -v cargo-deny >/dev/null || cargo install --locked cargo-deny
scripts/advisories.sh

log=$(mktemp)
trap 'rm -f "$log"' EXIT
cargo test --locked --lib --tests 2>&1 | tee "$log"

# Every fuzz target for a bounded time (fuzz/, docs/fuzzing.md); any crash fails the run.
FUZZ_SECONDS=${FUZZ_SECONDS:-10} scripts/fuzz.sh

# The container image: built from locally made base images, run, and checked end to end.
scripts/container.sh

# One closing line for the whole run, summed over every test binary.
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i) ~ /^passed;?$/) p += $(i-1); if ($(i) ~ /^failed;?$/) f += $(i-1) } }
     END { printf "tests: %d passed, %d failed\n", p, f }' "$log"
