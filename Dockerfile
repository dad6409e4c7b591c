# syntax=docker/dockerfile:1
# One image for both processes:
#   docker run parley                       -> python -m ingest  (webhooks, /healthz /readyz /metrics on 8080)
#   docker run parley python -m engine      -> python -m engine  (/healthz /readyz /metrics on 9108)
# No HEALTHCHECK: Compose and Kubernetes probe /healthz and /readyz themselves.
ARG PYTHON_IMAGE=python:3.11-slim

# --- builder: a venv holding the project and its runtime dependencies (never [dev]) ---
FROM ${PYTHON_IMAGE} AS builder
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
COPY pyproject.toml README.md ./
COPY parley ./parley
COPY store ./store
COPY api ./api
COPY inbox ./inbox
COPY ingest ./ingest
COPY engine ./engine
COPY assign ./assign
COPY metrics ./metrics
# A regular (non-editable) install: the packages and their Lua scripts land in the venv,
# and pip byte-compiles them so a read-only root filesystem costs nothing at start-up.
RUN pip install . && pip check

# --- runtime: the venv only, no build tools, no sources, a non-root user ---
FROM ${PYTHON_IMAGE}
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PARLEY_HTTP_HOST=0.0.0.0
RUN groupadd --system --gid 10001 parley \
    && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
       --shell /usr/sbin/nologin parley
COPY --from=builder /opt/venv /opt/venv
# An empty, root-owned working directory: nothing writable ends up on sys.path.
WORKDIR /app
# Numeric, so Kubernetes' runAsNonRoot can verify it without a passwd lookup.
USER 10001:10001
EXPOSE 8080 9108
CMD ["python", "-m", "ingest"]
