#!/usr/bin/env bash
# The whole test suite, on a fresh Debian machine (as root) or on one already set up.
#
#   bash scripts/test.sh                  # everything (what CI runs, via .ci/run)
#   bash scripts/test.sh tests/unit -x    # extra arguments go to pytest
#
# Installs what the integration tests need when it is missing (redis-server, PostgreSQL
# server binaries, Debian's chromium for the dashboard's browser tests, node and npm for
# Dapr's JavaScript SDK), installs the project with its test extras (Playwright among
# them), checks the import layers, then runs pytest. Any failure makes the script exit
# non-zero.
set -euo pipefail
cd "$(dirname "$0")/.."

# -- system packages (skipped when already present, so re-runs are fast) ---------------------
apt_packages=()
command -v redis-server >/dev/null 2>&1 || [ -x /usr/bin/redis-server ] || apt_packages+=(redis-server)
# The postgres fixture runs pg_ctl/initdb from /usr/lib/postgresql/<version>/bin.
compgen -G "/usr/lib/postgresql/*/bin/pg_ctl" >/dev/null || apt_packages+=(postgresql)
# The dashboard's browser tests drive this chromium through Playwright (the `test` extra);
# Playwright's own browser download is never used.
[ -x /usr/bin/chromium ] || apt_packages+=(chromium fonts-liberation)
# Dapr's JavaScript SDK is tried against `ledgerflow dev` (tests/integration/dapr_clients).
command -v node >/dev/null 2>&1 || apt_packages+=(nodejs)
command -v npm >/dev/null 2>&1 || apt_packages+=(npm)
if [ "${#apt_packages[@]}" -gt 0 ]; then
    echo "test.sh: installing ${apt_packages[*]}"
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    export DEBIAN_FRONTEND=noninteractive  # CI has no stdin: never prompt
    # Wait for the dpkg lock instead of failing if another apt run is still going.
    apt_opts=(-qq -o DPkg::Lock::Timeout=600)
    $sudo apt-get "${apt_opts[@]}" update
    $sudo apt-get "${apt_opts[@]}" install -y --no-install-recommends "${apt_packages[@]}"
fi

# -- the project -----------------------------------------------------------------------------
python3 -m pip install -q --disable-pip-version-check -e ".[test,otel,flower]"

# -- import layers (contracts in pyproject.toml) ---------------------------------------------
# import-linter has no `python -m` entry point; use the console script that belongs to this
# python3, not whichever lint-imports comes first on PATH.
scripts_dir="$(python3 -c 'import sysconfig; print(sysconfig.get_path("scripts"))')"
lint_imports="$scripts_dir/lint-imports"
[ -x "$lint_imports" ] || lint_imports="lint-imports"
"$lint_imports" --no-cache

# -- tests -----------------------------------------------------------------------------------
# pytest exits 5 when it collected no test: for us that is a failure, not a pass.
status=0
# Two processes (pytest-xdist), each test file in one of them: most tests wait on servers
# and processes they started, so two share the machine's cores well (about 11 minutes
# here instead of 18). Each process has its own PostgreSQL and Redis.
python3 -m pytest -q -p no:cacheprovider -n 2 --dist loadfile --durations=15 "$@" || status=$?
if [ "$status" -eq 5 ]; then
    echo "test.sh: pytest collected no tests" >&2
    exit 1
fi
exit "$status"
