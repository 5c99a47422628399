# syntax=docker/dockerfile:1
# SPDX-License-Identifier: Apache-2.0
#
# The host agent image: `vaccel agent` with the ONNX models and the ONNX
# Runtime library that the onnx plugin loads at run time.
#
#   docker build -f deploy/docker/agent.Dockerfile -t vaccel-rs/vaccel-agent:0.1.0 .
#
# Build from the repository root (the build context) with BuildKit (Docker 23+
# or `docker buildx build`). See docs/deployment.md.

ARG RUST_VERSION=1.95.0
ARG PYTHON_VERSION=3.11
ARG DEBIAN_RELEASE=bookworm

# ---- build: the `vaccel` binary -------------------------------------------
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

# ---- models: scripts/setup_models.py, the same pinned packages as CI -------
FROM python:${PYTHON_VERSION}-slim-${DEBIAN_RELEASE} AS models
WORKDIR /src
COPY scripts/setup_models.py scripts/setup_models.py
COPY scripts/vaccel_models scripts/vaccel_models
# The test images are fetched for local tests only and are not redistributed:
# drop them (and the conversion virtualenv) from what the image ships.
RUN python3 scripts/setup_models.py --models-dir /models \
    && rm -rf /models/.venv /models/.pydeps /models/test-images

# ---- runtime ---------------------------------------------------------------
FROM debian:${DEBIAN_RELEASE}-slim AS runtime
ARG ORT_VERSION=1.22.1
ARG VACCEL_UID=10000
ARG VACCEL_GID=10000
LABEL org.opencontainers.image.title="vaccel-agent" \
      org.opencontainers.image.description="vAccel host agent (vaccel-rs): runs accelerated ops for functions in containers, sandboxes and VMs" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.source="https://github.com/vaccel-rs/vaccel-rs"
# The socket directory belongs to the agent's user; clients share its group
# (start the agent with --unix-mode 660 and give clients that group).
RUN groupadd --system --gid "${VACCEL_GID}" vaccel \
    && useradd --system --uid "${VACCEL_UID}" --gid vaccel --no-create-home \
       --home-dir /nonexistent --shell /usr/sbin/nologin vaccel \
    && install -d -o vaccel -g vaccel -m 0750 /run/vaccel
COPY --from=build /out/vaccel /usr/local/bin/vaccel
COPY --from=models /models /usr/share/vaccel/models
# Kata + Firecracker: one agent per sandbox on its hybrid-vsock socket
# (deploy/k8s/agent-kata-fc-daemonset.yaml runs it).
COPY --chmod=0755 deploy/docker/hvsock-attach.sh /usr/local/bin/vaccel-hvsock-attach
ENV VACCEL_MODELS_DIR=/usr/share/vaccel/models \
    ORT_DYLIB_PATH=/usr/share/vaccel/models/onnxruntime/libonnxruntime.so.${ORT_VERSION} \
    VACCEL_LOG_LEVEL=3
USER ${VACCEL_UID}:${VACCEL_GID}
WORKDIR /usr/share/vaccel
EXPOSE 9100
# The agent serves Prometheus metrics only (no /_/health): a 200 from
# /metrics means the process is up and its runtime answers. bash's /dev/tcp
# keeps curl out of the image.
HEALTHCHECK --interval=15s --timeout=3s --start-period=10s --retries=3 \
    CMD ["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/9100 && printf 'GET /metrics HTTP/1.1\\r\\nHost: localhost\\r\\nConnection: close\\r\\n\\r\\n' >&3 && head -n 1 <&3 | grep -q ' 200 '"]
ENTRYPOINT ["vaccel", "agent"]
CMD ["--listen", "unix:///run/vaccel/agent.sock", "--metrics", "0.0.0.0:9100"]
