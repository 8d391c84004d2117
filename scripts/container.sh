#!/usr/bin/env bash
# Builds hookwarden's container image on a machine that reaches no image registry, runs it
# the way Kubernetes does (uid 10001, read-only root filesystem, no capabilities) and checks
# it end to end: /healthz, /readyz, Okta's verification GET and a real delivery over HTTPS,
# the image's HEALTHCHECK, and a clean stop on SIGTERM. CI runs it; so can you.
#
#   scripts/container.sh            build (cached) and check; exits non-zero on any failure
#   scripts/container.sh --build    build only
#
# No base image can be pulled here, so both are made locally and passed to the Dockerfile
# as build arguments (with a registry, `docker build .` uses public ones instead):
# - a builder: Debian bookworm from debootstrap (minbase, gcc, libc6-dev, ca-certificates,
#   busybox-static) plus the host's Rust toolchain (rustc, cargo and the host target's
#   standard library; no docs, no other tools), since no toolchain can be downloaded;
# - a runtime base in the spirit of distroless: only the files of bookworm's libc6,
#   libgcc-s1, netbase and base-files, taken from the same debootstrap tree.
# Both are kept under target/container/ (rootfs trees, image storage, cargo's registry and
# target cache), so a second run only rebuilds what changed. `rm -rf target/container`
# starts over.
#
# Podman and buildah run as root with chroot isolation and the overlay storage driver, or
# vfs where overlay cannot be mounted (both work inside a CI container); missing Debian
# packages are installed.
# Environment:
#   CONTAINER_DIR     state folder (default target/container)
#   DEBIAN_MIRROR     debootstrap's mirror (default: the one apt uses)
#   RUST_SYSROOT      toolchain to copy (default: `rustc --print sysroot`)
#   IMAGE             image name (default hookwarden:<version in Cargo.toml>)
#   STOP_GRACE        seconds `podman stop` waits before SIGKILL (default 15)
#   HOST_CA_BUNDLE    CA bundle cargo trusts inside the build (default: the host's)
#   STORAGE_DRIVER    overlay or vfs (default: overlay when it can be mounted here)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
started=$SECONDS
build_only=false
[ "${1:-}" = "--build" ] && build_only=true

if [ "$(id -u)" -ne 0 ]; then
  # Rootful podman: debootstrap needs root, and so does chowning the data volume to 10001.
  command -v sudo >/dev/null || { echo "run as root (podman, buildah and debootstrap need it)"; exit 1; }
  exec sudo --preserve-env=CONTAINER_DIR,DEBIAN_MIRROR,RUST_SYSROOT,IMAGE,STOP_GRACE,HOST_CA_BUNDLE,STORAGE_DRIVER,PATH "$0" "$@"
fi

step() { printf '\n==> [%4ss] %s\n' "$((SECONDS - started))" "$*"; }

version=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n1)
IMAGE=${IMAGE:-hookwarden:$version}
STATE=${CONTAINER_DIR:-$ROOT/target/container}
STOP_GRACE=${STOP_GRACE:-15}
mkdir -p "$STATE"

# --- tools ------------------------------------------------------------------------------
need=()
command -v podman >/dev/null || need+=(podman)
command -v buildah >/dev/null || need+=(buildah)
command -v runc >/dev/null || need+=(runc)
command -v debootstrap >/dev/null || need+=(debootstrap)
command -v newuidmap >/dev/null || need+=(uidmap)
command -v curl >/dev/null || need+=(curl)
command -v jq >/dev/null || need+=(jq)
if [ ${#need[@]} -gt 0 ]; then
  step "installing ${need[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi

# One private storage for every podman call, apart from any other podman use. overlay when
# the kernel lets us mount it (a layer costs only its changes); vfs otherwise, e.g. inside
# an unprivileged CI container: it works everywhere but copies the whole builder (~900 MB)
# for every build step.
driver=${STORAGE_DRIVER:-}
if [ -z "$driver" ]; then
  probe=$(mktemp -d)
  mkdir "$probe/l" "$probe/u" "$probe/w" "$probe/m"
  if mount -t overlay overlay -o "lowerdir=$probe/l,upperdir=$probe/u,workdir=$probe/w" "$probe/m" 2>/dev/null; then
    umount "$probe/m"
    driver=overlay
  else
    driver=vfs
  fi
  rm -rf "$probe"
fi
# podman refuses a runroot longer than 50 characters, which a state folder under a deep
# checkout easily is: its runtime state goes under /run, named after the state folder.
runroot=/run/hookwarden-podman-$(printf '%s' "$STATE-$driver" | md5sum | cut -c1-8)
PODMAN=(podman --root "$STATE/storage-$driver" --runroot "$runroot" --storage-driver "$driver"
  --runtime runc --cgroup-manager cgroupfs --events-backend file)

# --- base images ------------------------------------------------------------------------
mirror=${DEBIAN_MIRROR:-$(
  { grep -hs '^URIs:' /etc/apt/sources.list.d/*.sources | awk '{print $2}'
    grep -hs '^deb ' /etc/apt/sources.list /etc/apt/sources.list.d/*.list | awk '{print $2}'
  } | grep -m1 '/debian/\?$' || true)}
mirror=${mirror:-http://deb.debian.org/debian}

sysroot=${RUST_SYSROOT:-$(rustc --print sysroot)}
rust_version=$("$sysroot/bin/rustc" --version | awk '{print $2}')
host_target=x86_64-unknown-linux-gnu
[ -d "$sysroot/lib/rustlib/$host_target/lib" ] || { echo "no $host_target standard library in $sysroot"; exit 1; }
builder_image=localhost/hookwarden-builder:bookworm-rust-$rust_version
# The tag names the recipe: bump its -rN suffix when the runtime recipe below changes.
runtime_image=localhost/hookwarden-runtime:bookworm-r2

# The folder's name changes with the package list below, so that a tree kept from before a
# change is not reused (make came with the jemalloc feature).
debootstrap_tree=$STATE/rootfs/bookworm-2
if [ ! -e "$debootstrap_tree/.complete" ]; then
  step "debootstrap bookworm (minbase) from $mirror"
  rm -rf "$debootstrap_tree"
  mkdir -p "$debootstrap_tree"
  debootstrap --variant=minbase --include=gcc,libc6-dev,make,ca-certificates,busybox-static \
    bookworm "$debootstrap_tree" "$mirror" >"$STATE/debootstrap.log" 2>&1 ||
    { tail -n 20 "$STATE/debootstrap.log"; echo "debootstrap failed (log: $STATE/debootstrap.log)"; exit 1; }
  rm -rf "$debootstrap_tree"/var/cache/apt/archives/*.deb "$debootstrap_tree"/var/lib/apt/lists/*
  touch "$debootstrap_tree/.complete"
fi

if ! "${PODMAN[@]}" image exists "$builder_image"; then
  step "builder base $builder_image (bookworm + host Rust $rust_version)"
  tree=$STATE/rootfs/builder
  rm -rf "$tree"
  cp -a "$debootstrap_tree" "$tree"
  rm -f "$tree/.complete"
  # Only what compiles for the host target: rustc, cargo, their shared libraries, the
  # target's standard library and linker (rust-lld is the default linker since 1.90).
  rust=$tree/usr/local/rust
  mkdir -p "$rust/bin" "$rust/lib/rustlib" "$tree/usr/local/cargo"
  cp -a "$sysroot/bin/rustc" "$sysroot/bin/cargo" "$rust/bin/"
  cp -a "$sysroot"/lib/*.so* "$rust/lib/"
  cp -a "$sysroot/lib/rustlib/$host_target" "$rust/lib/rustlib/"
  tar -C "$tree" -c . | "${PODMAN[@]}" import --quiet \
    --change 'ENV PATH=/usr/local/rust/bin:/usr/local/cargo/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV CARGO_HOME=/usr/local/cargo' \
    - "$builder_image" >/dev/null
  rm -rf "$tree"
fi

if ! "${PODMAN[@]}" image exists "$runtime_image"; then
  step "runtime base $runtime_image (libc6, libgcc-s1, netbase, base-files)"
  tree=$STATE/rootfs/runtime
  rm -rf "$tree"
  mkdir -p "$tree/usr/bin" "$tree/usr/sbin" "$tree/usr/lib" "$tree/usr/lib64" "$tree/tmp" \
    "$tree/etc" "$tree/proc" "$tree/sys" "$tree/dev" "$tree/run" "$tree/var/lib"
  chmod 1777 "$tree/tmp"
  # bookworm is merged-/usr: the packages' /lib paths live under /usr/lib.
  for d in bin sbin lib lib64; do ln -s "usr/$d" "$tree/$d"; done
  list=$STATE/rootfs/runtime.files
  for pkg in libc6 libgcc-s1 netbase base-files; do
    cat "$debootstrap_tree/var/lib/dpkg/info/$pkg.list" \
      "$debootstrap_tree/var/lib/dpkg/info/$pkg:amd64.list" 2>/dev/null || true
  done | sed -E 's#^/(bin|sbin|lib|lib64)/#/usr/\1/#' |
    grep -Ev '^/usr/share/(doc|lintian|locale|man|info|common-licenses|base-files)|/gconv/' |
    while read -r f; do
      # Files and symlinks only; their folders are made by tar.
      if [ -L "$debootstrap_tree$f" ] || [ -f "$debootstrap_tree$f" ]; then echo ".$f"; fi
    done >"$list"
  tar -C "$debootstrap_tree" -c --no-recursion -T "$list" | tar -C "$tree" -x
  cp "$debootstrap_tree/etc/nsswitch.conf" "$tree/etc/"
  tar -C "$tree" -c . | "${PODMAN[@]}" import --quiet \
    --change 'ENV PATH=/usr/local/bin:/usr/bin:/bin' - "$runtime_image" >/dev/null
  rm -rf "$tree" "$list"
fi

# --- the image --------------------------------------------------------------------------
step "building $IMAGE (storage driver $driver)"
# crates.io is reachable, so cargo downloads crates; its registry and target folder are
# kept between runs, so a changed source only recompiles hookwarden itself. --format docker:
# the OCI image format has no HEALTHCHECK.
mkdir -p "$STATE/cargo-registry" "$STATE/cargo-target"
mounts=(-v "$STATE/cargo-registry:/usr/local/cargo/registry" -v "$STATE/cargo-target:/src/target")
# The host's CA bundle, for cargo only: it includes the CA of a TLS-inspecting egress proxy
# when there is one. A mount is not part of any layer, so the image keeps Debian's bundle.
host_ca=${HOST_CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}
[ -s "$host_ca" ] && mounts+=(-v "$host_ca:/etc/ssl/certs/ca-certificates.crt:ro")
build_start=$SECONDS
"${PODMAN[@]}" build --isolation chroot --format docker --layers \
  --build-arg "BUILDER_IMAGE=$builder_image" --build-arg "RUNTIME_IMAGE=$runtime_image" \
  "${mounts[@]}" \
  -t "$IMAGE" . >"$STATE/build.log" 2>&1 ||
  { tail -n 40 "$STATE/build.log"; echo "FAIL: image build (log: $STATE/build.log)"; exit 1; }
build_secs=$((SECONDS - build_start))
size_bytes=$("${PODMAN[@]}" image inspect -f '{{.Size}}' "$IMAGE")
# For `podman load` / `docker load` / `kind load image-archive` elsewhere.
archive=$STATE/hookwarden-$version.docker.tar
rm -f "$archive"
"${PODMAN[@]}" save --quiet --format docker-archive -o "$archive" "$IMAGE"
echo "image $IMAGE: $((size_bytes / 1000000)) MB ($size_bytes bytes), built in ${build_secs}s; archive $archive"
"${PODMAN[@]}" images --filter reference=hookwarden --filter reference=localhost/hookwarden-runtime
$build_only && exit 0

# --- run it and check it ----------------------------------------------------------------
results=()
failed=0
pass() { results+=("PASS  $*"); echo "PASS  $*"; }
fail() { results+=("FAIL  $*"); echo "FAIL  $*"; failed=1; }
summary() {
  echo
  echo "==== scripts/container.sh summary ($((SECONDS - started))s) ===="
  printf '%s\n' "${results[@]}"
  if [ "$failed" -eq 0 ]; then echo "RESULT: PASS"; else echo "RESULT: FAIL"; fi
}

name=hookwarden-check-$$
run=$STATE/run
rm -rf "$run"
mkdir -p "$run/etc" "$run/data"
password=$(head -c 18 /dev/urandom | base64 | tr -d '/+=')
printf '%s\n' "$password" >"$run/etc/okta-hook-password"
cat >"$run/etc/hookwarden.toml" <<'EOF'
# scripts/container.sh: an event hook with basic auth, the embedded SQLite store and a
# development certificate generated into the data volume.
[server]
listen = "0.0.0.0:8443"
data_dir = "/var/lib/hookwarden"
shutdown_grace = "5s"

[admin]
listen = "0.0.0.0:9090"

[[event_hooks]]
name = "okta"
path = "/hooks/okta/events"
auth = { type = "basic", users = [{ username = "okta", password = { file = "/etc/hookwarden/okta-hook-password" } }] }

[[event_hooks.sinks]]
name = "archive"
type = "jsonl"
path = "/var/lib/hookwarden/events.jsonl"
EOF
chmod 0644 "$run/etc/"*
chown 10001:10001 "$run/data"
chmod 0750 "$run/data"

cleanup() { "${PODMAN[@]}" rm -f -t 0 "$name" >/dev/null 2>&1 || true; }
trap cleanup EXIT

# Like the Deployment: read-only root filesystem, no capabilities, no privilege escalation.
run_opts=(--name "$name" --read-only --cap-drop ALL --security-opt no-new-privileges
  --ulimit nofile=1024:1024 --ulimit nproc=1024:1024
  -v "$run/etc:/etc/hookwarden:ro" -v "$run/data:/var/lib/hookwarden")
step "running $IMAGE"
network=bridge
if "${PODMAN[@]}" run -d "${run_opts[@]}" -p 127.0.0.1::8443 -p 127.0.0.1::9090 "$IMAGE" \
  >"$STATE/run.log" 2>&1; then
  public_port=$("${PODMAN[@]}" port "$name" 8443/tcp | sed 's/.*://')
  admin_port=$("${PODMAN[@]}" port "$name" 9090/tcp | sed 's/.*://')
else
  # No bridge network here (no CNI plugins, no iptables): share the host's loopback. The
  # ports are then 8443 and 9090 themselves (the HEALTHCHECK calls 9090).
  cat "$STATE/run.log"
  echo "the default network failed; trying --network host"
  cleanup
  network=host
  "${PODMAN[@]}" run -d "${run_opts[@]}" --network host "$IMAGE" >"$STATE/run.log" 2>&1 ||
    { cat "$STATE/run.log"; fail "container start"; summary; exit 1; }
  public_port=8443
  admin_port=9090
fi
run_start=$SECONDS
pass "container started (network $network; public 127.0.0.1:$public_port, admin 127.0.0.1:$admin_port)"
admin=http://127.0.0.1:$admin_port
public=https://127.0.0.1:$public_port

ok=false
for _ in $(seq 1 60); do
  if curl -fsS -m 2 "$admin/healthz" >/dev/null 2>&1; then ok=true; break; fi
  [ "$("${PODMAN[@]}" inspect -f '{{.State.Running}}' "$name")" = true ] || break
  sleep 0.5
done
if $ok; then pass "/healthz answers 200 (within $((SECONDS - run_start))s of the start)"; else
  "${PODMAN[@]}" logs "$name" | tail -n 30
  fail "/healthz did not answer within 30 s"
  summary
  exit 1
fi

code=$(curl -sS -m 5 -o "$STATE/readyz.json" -w '%{http_code}' "$admin/readyz" || true)
if [ "$code" = 200 ]; then pass "/readyz 200: $(tr -d '\n' <"$STATE/readyz.json")"; else fail "/readyz answered $code"; fi

uid=$("${PODMAN[@]}" exec "$name" /usr/local/bin/busybox id -u 2>/dev/null || true)
if [ "$uid" = 10001 ]; then pass "runs as uid 10001"; else fail "runs as uid '$uid', not 10001"; fi
if "${PODMAN[@]}" exec "$name" /usr/local/bin/busybox touch /usr/local/bin/x 2>/dev/null; then
  fail "the root filesystem is writable"
else
  pass "the root filesystem is read-only"
fi

# Okta's one-time verification: the challenge comes back as {"verification": ...}.
challenge=$(head -c 24 /dev/urandom | base64 | tr -d '/+=')
code=$(curl -ksS -m 5 -o "$STATE/verify.json" -w '%{http_code}' -u "okta:$password" \
  -H "X-Okta-Verification-Challenge: $challenge" "$public/hooks/okta/events" || true)
if [ "$code" = 200 ] && jq -e --arg c "$challenge" '. == {"verification": $c}' "$STATE/verify.json" >/dev/null; then
  pass "verification GET over HTTPS echoes the challenge: $(tr -d '\n' <"$STATE/verify.json")"
else
  fail "verification GET answered $code: $(cat "$STATE/verify.json" 2>/dev/null)"
fi

# Okta's real delivery sample; 200 means it is stored, and the jsonl sink then writes it.
fixture=tests/fixtures/okta/event-hook-delivery.json
code=$(curl -ksS -m 5 -o "$STATE/delivery.out" -w '%{http_code}' -u "okta:$password" \
  -H 'Content-Type: application/json' --data-binary "@$fixture" "$public/hooks/okta/events" || true)
if [ "$code" = 200 ]; then pass "POST of $fixture: 200"; else fail "POST of $fixture answered $code: $(cat "$STATE/delivery.out")"; fi
unauth=$(curl -ksS -m 5 -o /dev/null -w '%{http_code}' -u "okta:wrong" \
  -H 'Content-Type: application/json' --data-binary "@$fixture" "$public/hooks/okta/events" || true)
if [ "$unauth" = 401 ]; then pass "the same POST with a wrong password: 401"; else fail "the same POST with a wrong password answered $unauth, not 401"; fi
want=$(jq '.data.events | length' "$fixture")
uuids=$(jq -r '.data.events[].uuid' "$fixture")
got=0
for _ in $(seq 1 20); do
  got=0
  for u in $uuids; do grep -qs "$u" "$run/data/events.jsonl" && got=$((got + 1)); done
  [ "$got" -eq "$want" ] && break
  sleep 0.5
done
if [ "$got" -eq "$want" ]; then pass "jsonl sink in the data volume holds the $want event(s)"; else fail "jsonl sink holds $got of $want events"; fi
if [ -s "$run/data/tls/dev-cert.pem" ] && [ -s "$run/data/tls/dev-key.pem" ]; then
  pass "development certificate generated into the data volume (tls/dev-cert.pem, tls/dev-key.pem)"
else
  fail "no development certificate in the data volume"
fi

# The image's HEALTHCHECK (busybox wget on the admin listener), run now rather than waited for.
hc=$("${PODMAN[@]}" healthcheck run "$name" 2>&1) && hc_rc=0 || hc_rc=$?
status=$("${PODMAN[@]}" inspect -f '{{.State.Health.Status}}' "$name" 2>/dev/null || true)
if [ "$hc_rc" -eq 0 ] && [ "$status" = healthy ]; then pass "HEALTHCHECK: $status"; else fail "HEALTHCHECK: exit $hc_rc, status '$status' ($hc)"; fi

# SIGTERM: hookwarden is PID 1 and must stop by itself well within podman's grace.
stop_start=$(date +%s%N)
# (Without systemd, podman complains that it has no healthcheck timer to remove: harmless.)
"${PODMAN[@]}" stop -t "$STOP_GRACE" "$name" >/dev/null 2>"$STATE/stop.err" || cat "$STATE/stop.err"
stop_ms=$((($(date +%s%N) - stop_start) / 1000000))
exit_code=$("${PODMAN[@]}" inspect -f '{{.State.ExitCode}}' "$name")
"${PODMAN[@]}" logs "$name" >"$STATE/container.log" 2>&1
if [ "$exit_code" = 0 ] && grep -q 'hookwarden stopped' "$STATE/container.log" && [ "$stop_ms" -lt $((STOP_GRACE * 1000)) ]; then
  pass "podman stop: exit code 0 after ${stop_ms} ms (grace ${STOP_GRACE}s), log says \"hookwarden stopped\""
else
  fail "podman stop: exit code $exit_code after ${stop_ms} ms (grace ${STOP_GRACE}s); log: $(tail -n 3 "$STATE/container.log")"
fi
echo
echo "--- container log ($STATE/container.log) ---"
cat "$STATE/container.log"

summary
exit "$failed"
