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

# Only what the distribution is built from (the build needs README.md: pyproject's readme).
# psycopg[binary] ships its own libpq, so no system packages are needed.
COPY pyproject.toml README.md ./
COPY ledgerflow ./ledgerflow
COPY orchestrator ./orchestrator
COPY workers ./workers
COPY brokers ./brokers
COPY persistence ./persistence
RUN pip install .

COPY examples ./examples

# Celery refuses to run a worker as root with pickle enabled and warns otherwise; run as an
# unprivileged user anyway.
RUN useradd --create-home --uid 1000 ledgerflow && chown ledgerflow /app
USER ledgerflow

EXPOSE 3500
CMD ["ledgerflow", "--help"]
