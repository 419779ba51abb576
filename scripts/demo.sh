#!/usr/bin/env bash
# One command on a fresh machine: install Ledgerflow and run the demo order workflow end to
# end on the embedded default (SQLite under ./.ledgerflow, Celery's in-memory broker).
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m pip install -q -e . >/dev/null
exec python3 -m examples.order_app
