# hookwarden's container image: a build stage that compiles the dist binary, and a
# runtime stage with only that binary, glibc, CA certificates and a static busybox for the
# HEALTHCHECK. It runs as uid/gid 10001 with a read-only root filesystem
# (deploy/kubernetes/hookwarden.yaml).
#
# With a registry:
#   docker build -t hookwarden:0.1.0 .
# Without one (this is what CI does): scripts/container.sh makes both base images locally
# with debootstrap and the host's Rust toolchain, builds with buildah, then runs the image
# and checks it end to end.
#
# The base images are build arguments so that either works:
# - BUILDER_IMAGE: Debian bookworm with a Rust toolchain (cargo, rustc >= rust-version in
#   Cargo.toml), gcc, libc6-dev and ca-certificates. busybox-static is installed below if
#   it is missing.
# - RUNTIME_IMAGE: anything with glibc and libgcc_s of bookworm or newer, and nothing
#   else needed. gcr.io/distroless/cc-debian12 is the smallest public one; the script
#   builds an equivalent from bookworm's libc6, libgcc-s1, netbase and base-files.
ARG BUILDER_IMAGE=docker.io/library/rust:1.95-slim-bookworm
ARG RUNTIME_IMAGE=gcr.io/distroless/cc-debian12

FROM ${BUILDER_IMAGE} AS build
# The healthcheck client: the runtime image has no shell and no curl. busybox-static is
# one self-contained file of about 2 MB whose `wget` can GET /healthz.
# make: jemalloc's C sources (the `jemalloc` feature) build with it.
RUN { test -x /bin/busybox && command -v make >/dev/null; } || { apt-get update && apt-get install -y --no-install-recommends busybox-static make && rm -rf /var/lib/apt/lists/*; }
WORKDIR /src
# Only what the binary is built from (the simulate catalog embeds Okta's samples from
# tests/fixtures), so that edits to tests or docs do not recompile it.
COPY Cargo.toml Cargo.lock ./
# jemalloc's settings (JEMALLOC_SYS_WITH_MALLOC_CONF), read when it is built.
COPY .cargo .cargo
COPY src src
COPY config config
COPY examples examples
COPY tests/fixtures tests/fixtures
# The fully optimised binary (the `dist` profile: fat LTO, one codegen unit) without its
# debug info (the profile keeps line tables for local profiling); symbol names stay, so
# panics still have a readable backtrace. scripts/container.sh mounts a cache over target/:
# hence the binary is copied out in the same step, and the crate's own sources are touched
# first, since cargo judges them by modification time and this step only runs when the
# copied sources changed.
ENV CARGO_PROFILE_DIST_DEBUG=0 \
    CARGO_PROFILE_DIST_STRIP=debuginfo
RUN touch src/lib.rs src/main.rs \
 && cargo build --profile dist --features jemalloc --locked --bin hookwarden \
 && mkdir -p /out/usr/local/bin /out/etc/hookwarden /out/var/lib/hookwarden \
 && cp target/dist/hookwarden /out/usr/local/bin/hookwarden \
 && cp /bin/busybox /out/usr/local/bin/busybox \
 && printf 'root:x:0:0:root:/root:/sbin/nologin\nhookwarden:x:10001:10001:hookwarden:/var/lib/hookwarden:/sbin/nologin\n' > /out/etc/passwd \
 && printf 'root:x:0:\nhookwarden:x:10001:\n' > /out/etc/group

FROM ${RUNTIME_IMAGE}
# The async-nats client trusts the system's CA certificates for tls:// servers (reqwest,
# for HTTP sinks and reconciliation, has Mozilla's roots compiled in). Copied from the
# build stage so that any runtime base works, with or without them.
COPY --from=build /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY --from=build /out/etc/passwd /out/etc/group /etc/
COPY --from=build /out/usr/local/bin/ /usr/local/bin/
# The config folder stays root's (10001 only reads it); the data folder is 10001's.
COPY --from=build /out/etc/hookwarden /etc/hookwarden
COPY --from=build --chown=10001:10001 /out/var/lib/hookwarden /var/lib/hookwarden
USER 10001:10001
WORKDIR /var/lib/hookwarden
# Config (hookwarden.toml, TLS certificate and key; read-only) and data (the embedded
# store, the generated development certificate, jsonl sinks; writable by 10001).
VOLUME ["/etc/hookwarden", "/var/lib/hookwarden"]
# Public listener (Okta calls it) and admin listener (/healthz, /readyz, /metrics), as
# configured by the config file: the defaults bind 127.0.0.1, a container config sets
# listen = "0.0.0.0:8443" and [admin] listen = "0.0.0.0:9090".
EXPOSE 8443 9090
# Through the admin listener from inside the container, so it must listen on port 9090
# (0.0.0.0 or 127.0.0.1). Kubernetes ignores HEALTHCHECK and uses its own probes.
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
  CMD ["/usr/local/bin/busybox", "wget", "-q", "-O", "/dev/null", "http://127.0.0.1:9090/healthz"]
# Exec form: hookwarden is PID 1 and gets SIGTERM itself; it stops accepting, finishes
# in-flight requests within server.shutdown_grace and logs "hookwarden stopped".
ENTRYPOINT ["/usr/local/bin/hookwarden"]
CMD ["serve", "--config", "/etc/hookwarden/hookwarden.toml"]
