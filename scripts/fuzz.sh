#!/usr/bin/env bash
# Runs every fuzz target (fuzz/fuzz_targets) for a bounded time each and exits non-zero
# when any of them finds a crash, a hang or a leak. See docs/fuzzing.md.
#
#   scripts/fuzz.sh                        # every target, FUZZ_SECONDS=20 each
#   FUZZ_SECONDS=300 scripts/fuzz.sh auth_header forwarded_header
#
# Settings (environment):
#   FUZZ_SECONDS    time per target (default 20)
#   FUZZ_SANITIZER  address (default) or none (faster runs, finds only panics and hangs)
#   FUZZ_TIMEOUT    seconds one input may take before it counts as a hang (default 10)
#
# Needs a nightly toolchain (`rustup toolchain install nightly`); installs cargo-fuzz
# when it is missing. The working corpus is fuzz/corpus/<target> (not committed): it is
# seeded each run from Okta's samples in tests/fixtures/okta, the example configurations
# and the hand-written seeds in fuzz/seeds/<target>, and it grows as the fuzzer finds new
# paths. A crash is saved under fuzz/artifacts/<target>/ and replayed with
# `cargo +nightly fuzz run <target> <file>`.
set -euo pipefail
cd "$(dirname "$0")/.."

FUZZ_SECONDS=${FUZZ_SECONDS:-20}
FUZZ_SANITIZER=${FUZZ_SANITIZER:-address}
FUZZ_TIMEOUT=${FUZZ_TIMEOUT:-10}
ALL_TARGETS=(event_envelope inline_request inline_check config_toml forwarded_header auth_header)
if [ $# -gt 0 ]; then TARGETS=("$@"); else TARGETS=("${ALL_TARGETS[@]}"); fi

if ! rustup run nightly rustc --version >/dev/null 2>&1; then
  echo "fuzz.sh: needs a nightly toolchain: rustup toolchain install nightly" >&2
  exit 2
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "fuzz.sh: installing cargo-fuzz"
  cargo install --locked cargo-fuzz
fi

# The same flags for build and run, or `run` rebuilds.
FLAGS=(--release --debug-assertions --sanitizer "$FUZZ_SANITIZER")

# Seeds. Inline check inputs are "<request sample name>\n<answer JSON>": each of Okta's
# sample answers against each sample request of its type.
seed() {
  local target=$1 dir=fuzz/corpus/$1
  mkdir -p "$dir"
  if [ -d "fuzz/seeds/$target" ]; then cp -n fuzz/seeds/"$target"/* "$dir"/ 2>/dev/null || true; fi
  case $target in
    event_envelope)
      cp -n tests/fixtures/okta/event-hook-*.json tests/fixtures/okta/system-log-event-*.json "$dir"/ ;;
    inline_request)
      cp -n tests/fixtures/okta/*request*.json "$dir"/ ;;
    inline_check)
      local prefix response request
      for prefix in token-hook registration-hook import-hook password-import saml-hook telephony-hook; do
        for response in tests/fixtures/okta/"$prefix"-response*.json; do
          for request in tests/fixtures/okta/"$prefix"-request*.json; do
            local out="$dir/$(basename "$request" .json)--$(basename "$response" .json)"
            [ -e "$out" ] || { basename "$request" .json; cat "$response"; } > "$out"
          done
        done
      done ;;
    config_toml)
      cp -n config/default.toml "$dir"/default.toml
      cp -n config/hookwarden.toml "$dir"/hookwarden.toml
      [ -f bench/inline.toml ] && cp -n bench/inline.toml "$dir"/bench-inline.toml
      # Every TOML example of the handler guide.
      awk -v dir="$dir" '
        /^```toml/ { n++; file = sprintf("%s/inline-handlers-%02d.toml", dir, n); inblock = 1; next }
        /^```/ { inblock = 0; next }
        inblock { print > file }
      ' docs/inline-handlers.md ;;
  esac
}

echo "fuzz.sh: building ${#TARGETS[@]} target(s) (nightly, sanitizer $FUZZ_SANITIZER)"
build_started=$SECONDS
(cd fuzz && cargo +nightly fuzz build "${FLAGS[@]}")
echo "fuzz.sh: built in $((SECONDS - build_started)) s"

mkdir -p fuzz/logs
failed=()
summary=()
for target in "${TARGETS[@]}"; do
  seed "$target"
  log=fuzz/logs/$target.log
  echo "fuzz.sh: $target for ${FUZZ_SECONDS}s ($(ls "fuzz/corpus/$target" | wc -l) inputs in its corpus)"
  started=$SECONDS
  set +e
  (cd fuzz && cargo +nightly fuzz run "${FLAGS[@]}" "$target" "corpus/$target" -- \
      -max_total_time="$FUZZ_SECONDS" -timeout="$FUZZ_TIMEOUT" -rss_limit_mb=2048 \
      -max_len=65536 -print_final_stats=1) >"$log" 2>&1
  status=$?
  set -e
  execs=$(awk '/stat::number_of_executed_units:/ { n += $2 } END { print n + 0 }' "$log")
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -n 1 | grep -o '[0-9]*' || true)
  line="$target: exit $status, $((SECONDS - started)) s, ${execs:-?} executions, coverage ${cov:-?}, corpus $(ls "fuzz/corpus/$target" | wc -l)"
  summary+=("$line")
  echo "fuzz.sh: $line"
  if [ "$status" -ne 0 ]; then
    failed+=("$target")
    echo "fuzz.sh: $target FAILED; the end of its log ($log):" >&2
    tail -n 40 "$log" >&2
    ls fuzz/artifacts/"$target"/ 2>/dev/null >&2 || true
  fi
done

echo
echo "fuzz.sh: summary"
printf '  %s\n' "${summary[@]}"
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz.sh: crashes, hangs or leaks in: ${failed[*]} (inputs under fuzz/artifacts/)" >&2
  exit 1
fi
echo "fuzz.sh: no crash in ${#TARGETS[@]} target(s)"
