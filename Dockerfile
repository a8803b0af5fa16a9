# syntax=docker/dockerfile:1
# One image for every process of the service (API, pipeline, read and Temporal workers); the
# compose file picks the process with `command` and configures it only by environment.
#
# Debian's own python3 (3.11) rather than the python:3.11 images: `make check-image` rebuilds
# this runtime file system without an engine (debootstrap of the same release, the same apt
# packages), and only a Python from Debian's archive can be reproduced that way exactly.
ARG DEBIAN_IMAGE=debian:bookworm-slim

# The uv the lock file was written with.
FROM ghcr.io/astral-sh/uv:0.13.9 AS uv

FROM ${DEBIAN_IMAGE} AS build
# Debian's security updates matter more than pinned package versions here; the base image
# tag fixes the release.
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 \
 && rm -rf /var/lib/apt/lists/*
COPY --from=uv /uv /usr/local/bin/uv
ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON=/usr/bin/python3 \
    UV_PYTHON_DOWNLOADS=never \
    UV_PROJECT_ENVIRONMENT=/opt/venv
WORKDIR /src
# Dependencies first, from the lock only: this layer is rebuilt when uv.lock changes.
COPY pyproject.toml uv.lock README.md ./
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --locked --no-dev --no-install-project
COPY domain ./domain
COPY application ./application
COPY infrastructure ./infrastructure
# --no-editable: the project goes into the environment as a package, so the runtime image
# needs the environment only, not the source tree.
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --locked --no-dev --no-editable

FROM ${DEBIAN_IMAGE} AS runtime
# python3: the interpreter the environment was built for (/opt/venv links to it). libmagic1
# sniffs the real MIME type of uploads. ca-certificates: TLS to Temporal Cloud, S3, OpenAI.
# No libpq: psycopg's binary build brings its own.
# tesseract-ocr-*: Tesseract's language data for OCR (eng; osd, orientation and script).
# The engine itself is tesserocr's wheel (libtesseract bundled), so not the tesseract-ocr
# command, whose cairo, pango and ICU the service never runs. One more OCR_LANGUAGES
# language: add its package here (tesseract-ocr-deu for deu, tesseract-ocr-chi-sim for chi_sim).
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 libmagic1 ca-certificates \
    tesseract-ocr-eng tesseract-ocr-osd \
 && rm -rf /var/lib/apt/lists/*
RUN groupadd --system --gid 10001 app \
 && useradd --system --uid 10001 --gid app --create-home --home-dir /home/app app \
 && mkdir /data \
 && chown app:app /data
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    DATA_DIR=/data \
    LOG_FORMAT=json
# Numeric, so that Kubernetes' runAsNonRoot can verify it without reading /etc/passwd.
USER 10001:10001
WORKDIR /home/app
EXPOSE 8000
# The default process is the API, so the default health check is its own; each compose
# service running another process overrides both (infrastructure.healthcheck PROCESS).
HEALTHCHECK --interval=15s --timeout=10s --start-period=30s --retries=5 \
  CMD ["python", "-m", "infrastructure.healthcheck", "api"]
CMD ["python", "-m", "infrastructure.api"]
