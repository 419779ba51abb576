# One image for every Ledgerflow process (api, orchestrator, worker, beat); see
# docker-compose.yml. The example app is copied too, so `examples.order_app` imports.
FROM python:3.11-slim

# PYTHONPATH: console scripts put their own directory, not the working directory, on
# sys.path; make /app importable so `ledgerflow worker examples.order_app` finds the app.
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONPATH=/app

WORKDIR /app

# Install the distribution as pyproject.toml defines it (its packages, package data and
# dependencies), from the build context that .dockerignore leaves: no list of packages
# here to forget one in. psycopg[binary] ships its own libpq, so no system packages.
COPY . /tmp/ledgerflow-src
RUN pip install "/tmp/ledgerflow-src[otel,flower]" && rm -rf /tmp/ledgerflow-src

COPY examples ./examples

# Celery refuses to run a worker as root with pickle enabled and warns otherwise; run as an
# unprivileged user anyway.
RUN useradd --create-home --uid 1000 ledgerflow && chown ledgerflow /app
USER ledgerflow

EXPOSE 3500
CMD ["ledgerflow", "--help"]
