# Multi-stage: build the wheel (C + Cython) with a compiler, run it on a slim image as non-root.
FROM python:3.11-slim AS build
RUN apt-get update && apt-get install -y --no-install-recommends gcc libc6-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY pyproject.toml setup.py README.md LICENSE MANIFEST.in ./
COPY csrc csrc
COPY pycache_cluster pycache_cluster
RUN pip install --no-cache-dir "setuptools>=64" wheel "cython>=3.0" \
    && pip wheel --no-cache-dir --no-build-isolation --wheel-dir /wheels .

FROM python:3.11-slim
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels \
    && groupadd --system --gid 11211 pycache \
    && useradd --system --no-create-home --uid 11211 --gid 11211 pycache
# Numeric, so that Kubernetes' runAsNonRoot can check it (deploy/k8s runs as 11211 too).
USER 11211:11211
# Containers listen on every interface (the CLI's default stays loopback); the flags, or the
# PYCACHE_* variables, configure the rest: e.g. PYCACHE_GOSSIP_PORT, PYCACHE_JOIN.
ENV PYCACHE_LISTEN=0.0.0.0
# 9150: Prometheus metrics, when PYCACHE_METRICS_PORT=9150 (off unless set).
EXPOSE 11211 7946/tcp 7946/udp 9150
# The probe reads the node's own settings (PYCACHE_PORT, PYCACHE_TLS and PYCACHE_SSL_*, -Y's
# PYCACHE_AUTH_FILE, PYCACHE_UNIX_SOCKET): the port and TLS the node really serves.
HEALTHCHECK --interval=10s --timeout=5s --start-period=20s --retries=3 CMD ["pycache-cluster", "health"]
ENTRYPOINT ["pycache-cluster", "serve"]
