# syntax=docker/dockerfile:1
# SPDX-License-Identifier: Apache-2.0
#
# A C function image: examples/c/classify_stdin.c (image on stdin, tags on
# stdout) linked against libvaccel.so, run by `vaccel watchdog` in
# serializing mode (one process per request, the whole body on its stdin).
# libvaccel's remote plugin forwards the classification to the host agent.
#
#   docker build -f deploy/docker/function-c.Dockerfile -t vaccel-rs/vaccel-function-c:0.1.0 .

ARG RUST_VERSION=1.95.0
ARG DEBIAN_RELEASE=bookworm

# The full rust image (not -slim): it has the C++ compiler that builds
# OpenH264, the video decoder of `vaccel bench --video`, from source.
FROM rust:${RUST_VERSION}-${DEBIAN_RELEASE} AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY crates crates
COPY include include
COPY scripts/install-capi.sh scripts/install-capi.sh
COPY examples/c/classify_stdin.c examples/c/classify_stdin.c
# The watchdog binary, then the C library staged under /out/usr/local (as
# scripts/install-capi.sh installs it), then the program, built against the
# staged headers and library the way a user's program would be.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p vaccel-cli -p vaccel-capi \
    && install -D -m 0755 target/release/vaccel /out/usr/local/bin/vaccel \
    && DESTDIR=/out scripts/install-capi.sh --from target/release --no-ldconfig /usr/local \
    && rm -f /out/usr/local/lib/libvaccel.a \
    && cc -std=c11 -O2 -Wall -Wextra -I/out/usr/local/include \
       examples/c/classify_stdin.c -L/out/usr/local/lib -lvaccel \
       -o /out/usr/local/bin/classify_stdin

FROM debian:${DEBIAN_RELEASE}-slim AS runtime
ARG APP_UID=10001
ARG VACCEL_GID=10000
LABEL org.opencontainers.image.title="vaccel-function-c" \
      org.opencontainers.image.description="vaccel-rs C function (classify_stdin) behind the of-watchdog compatible server, serializing mode" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.source="https://github.com/vaccel-rs/vaccel-rs"
COPY --from=build /out/usr/local /usr/local
RUN ldconfig \
    && groupadd --system --gid "${VACCEL_GID}" vaccel \
    && groupadd --system --gid "${APP_UID}" app \
    && useradd --system --uid "${APP_UID}" --gid app --groups vaccel --no-create-home \
       --home-dir /nonexistent --shell /usr/sbin/nologin app
ENV mode=serializing \
    fprocess=/usr/local/bin/classify_stdin \
    port=8080 \
    exec_timeout=30s \
    read_timeout=30s \
    write_timeout=30s \
    max_inflight=0 \
    VACCEL_PLUGINS=remote \
    VACCEL_RPC_ADDRESS=unix:///run/vaccel/agent.sock
USER ${APP_UID}
EXPOSE 8080 8081
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \
    CMD ["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/8080 && printf 'GET /_/health HTTP/1.1\\r\\nHost: localhost\\r\\nConnection: close\\r\\n\\r\\n' >&3 && head -n 1 <&3 | grep -q ' 200 '"]
ENTRYPOINT ["vaccel", "watchdog"]
