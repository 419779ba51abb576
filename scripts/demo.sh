#!/usr/bin/env bash
# One command on a fresh machine: install Ledgerflow and run the demo order workflow end to
# end on the embedded default (SQLite under ./.ledgerflow, Celery's in-memory broker), then
# print how to open it in the dashboard.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m pip install -q -e . >/dev/null
python3 -m examples.order_app
echo
echo "To see it in the dashboard, run:  ledgerflow dev examples.order_app"
echo "and open http://127.0.0.1:3500/ui/ (the same database, under ./.ledgerflow)."

