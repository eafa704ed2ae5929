# Multi-stage: build the wheel (C + Cython) with a compiler, run it on a slim image as non-root.
FROM python:3.11-slim AS build
RUN apt-get update && apt-get install -y --no-install-recommends gcc libc6-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY pyproject.toml setup.py README.md ./
COPY csrc csrc
COPY pycache_cluster pycache_cluster
RUN pip install --no-cache-dir "setuptools>=64" wheel "cython>=3.0" \
    && pip wheel --no-cache-dir --no-build-isolation --wheel-dir /wheels .

FROM python:3.11-slim
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels \
    && useradd --system --no-create-home --uid 11211 pycache
USER pycache
# Containers listen on every interface (the CLI's default stays loopback); the flags, or the
# PYCACHE_* variables, configure the rest: e.g. PYCACHE_GOSSIP_PORT, PYCACHE_JOIN.
ENV PYCACHE_LISTEN=0.0.0.0
# 9150: Prometheus metrics, when PYCACHE_METRICS_PORT=9150 (off unless set).
EXPOSE 11211 7946/tcp 7946/udp 9150
HEALTHCHECK --interval=10s --timeout=3s --retries=3 CMD python -c "import socket; s=socket.create_connection(('127.0.0.1', 11211), 2); s.sendall(b'version\r\n'); assert s.recv(64).startswith(b'VERSION')"
ENTRYPOINT ["pycache-cluster", "serve"]
