# syntax=docker/dockerfile:1
# SPDX-License-Identifier: Apache-2.0
#
# A function image: `vaccel watchdog` (an of-watchdog drop-in) serving one of
# the built-in functions in process, with the remote plugin forwarding every
# accelerated op to the host agent.
#
#   docker build -f deploy/docker/function.Dockerfile -t vaccel-rs/vaccel-function:0.1.0 .
#   docker build -f deploy/docker/function.Dockerfile --build-arg FUNCTION=blur \
#       -t vaccel-rs/vaccel-function-blur:0.1.0 .
#
# One image serves classify, blur, echo and noop: the function is the
# `fprocess` environment variable (FUNCTION only sets its default), so
# OpenFaaS or Kubernetes can pick it per deployment.

ARG RUST_VERSION=1.95.0
ARG DEBIAN_RELEASE=bookworm

# The full rust image (not -slim): it has the C++ compiler that builds
# OpenH264, the video decoder of `vaccel bench --video`, from source.
FROM rust:${RUST_VERSION}-${DEBIAN_RELEASE} AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY crates crates
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p vaccel-cli \
    && install -D -m 0755 target/release/vaccel /out/vaccel

FROM debian:${DEBIAN_RELEASE}-slim AS runtime
ARG FUNCTION=classify
ARG APP_UID=10001
# The agent's group: membership lets the function open a 0660 agent socket.
ARG VACCEL_GID=10000
LABEL org.opencontainers.image.title="vaccel-function" \
      org.opencontainers.image.description="vaccel-rs function: of-watchdog compatible server, in-process functions, remote plugin" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.source="https://github.com/vaccel-rs/vaccel-rs"
RUN groupadd --system --gid "${VACCEL_GID}" vaccel \
    && groupadd --system --gid "${APP_UID}" app \
    && useradd --system --uid "${APP_UID}" --gid app --groups vaccel --no-create-home \
       --home-dir /nonexistent --shell /usr/sbin/nologin app
COPY --from=build /out/vaccel /usr/local/bin/vaccel
# of-watchdog settings (same names and meanings as OpenFaaS's of-watchdog),
# then where the accelerated ops go.
ENV mode=inproc \
    fprocess=${FUNCTION} \
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
