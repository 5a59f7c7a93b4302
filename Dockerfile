# syntax=docker/dockerfile:1
# One image for every ledgerflow service (docs/adr/0007-deploy.md): the entrypoint is the
# `ledgerflow` command and the service is its argument:
#   docker run IMAGE api | projector | scheduler | executor --queue Q | ui
# plus `python -m ledgerflow.cli.init_command` (topics and migrations, run once).
#
# Build from the repository root: docker build -t ledgerflow:local .

# uv, pinned to the version that wrote uv.lock.
FROM ghcr.io/astral-sh/uv:0.13.9 AS uv

# --- build: resolve exactly uv.lock into a self-contained virtualenv -----------------
FROM python:3.11-slim-bookworm AS build
COPY --from=uv /uv /usr/local/bin/uv
ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PYTHON=/usr/local/bin/python3.11 \
    UV_PROJECT_ENVIRONMENT=/opt/ledgerflow
WORKDIR /src
# Third-party dependencies first, from the lock file alone, so this layer is reused
# until uv.lock or a pyproject changes.
COPY pyproject.toml uv.lock ./
COPY libs/common/pyproject.toml libs/common/
COPY libs/cli/pyproject.toml libs/cli/
COPY services/api/pyproject.toml services/api/
COPY services/scheduler/pyproject.toml services/scheduler/
COPY services/executor/pyproject.toml services/executor/
COPY services/ui/pyproject.toml services/ui/
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --no-editable --no-install-workspace
# Then our own packages, installed as wheels (--no-editable): the runtime image needs
# no source tree.
COPY libs libs
COPY services services
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --no-editable

# --- runtime ---------------------------------------------------------------------------
FROM python:3.11-slim-bookworm AS runtime
LABEL org.opencontainers.image.title="ledgerflow" \
      org.opencontainers.image.description="Event-sourced workflow orchestrator over Kafka" \
      org.opencontainers.image.source="https://github.com/ledgerflow/ledgerflow"
# tini is PID 1: it forwards SIGTERM to the ledgerflow process (which stops gracefully)
# and reaps orphans that task processes (BashOperator) leave behind.
RUN apt-get update \
    && apt-get install -y --no-install-recommends tini=0.19.0-1+b3 \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 ledgerflow \
    && useradd --system --uid 10001 --gid ledgerflow --home-dir /home/ledgerflow \
       --create-home --shell /usr/sbin/nologin ledgerflow
COPY --from=build /opt/ledgerflow /opt/ledgerflow
# The example DAGs (with any template files beside them), loaded by compose's
# `load-examples` and the dev overlay's Job, never by the services themselves.
COPY examples/ /opt/ledgerflow-examples/
ENV PATH=/opt/ledgerflow/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    LEDGERFLOW_API_HOST=0.0.0.0 \
    LEDGERFLOW_UI_HOST=0.0.0.0 \
    LEDGERFLOW_PROBE_HOST=0.0.0.0 \
    LEDGERFLOW_PROBE_PORT=8090
# Numeric so that Kubernetes can enforce runAsNonRoot.
USER 10001:10001
WORKDIR /home/ledgerflow
# ui, api, probes (/healthz, /readyz) of every service
EXPOSE 8080 8081 8090
STOPSIGNAL SIGTERM
# Liveness of whichever service runs here: its probe server's /healthz.
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-m", "ledgerflow.common.probes", "check"]
ENTRYPOINT ["tini", "--", "ledgerflow"]
CMD ["--help"]
