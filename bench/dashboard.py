"""The dashboard's list with 100,000 instances in PostgreSQL: how long `/ui/` takes to answer.

    python -m bench.dashboard                 # 100,000 instances, 50 requests per query
    python -m bench.dashboard --instances 10000 --rounds 5

Starts PostgreSQL on a free port (the test suite's helper; or uses LEDGERFLOW_DATABASE_URL),
fills `instances` with one INSERT ... SELECT (7 statuses, 20 workflow names, 3 apps, created
over 30 days), starts `ledgerflow api` as its own process and times each query as a browser
sees it (HTTP, keep-alive): the page (`/ui/`, rows and page links) and, separately, the counts
by status that the page fetches right after (`/ui/counts`, the same filters). Reports p50, p95
and max per query; the target is the page's p95 under 200 ms.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx
import sqlalchemy as sa

from persistence.store import Store
from tests.fixtures import postgres as pg_fixture
from tests.fixtures.processes import ProcessGroup, start_ledgerflow

TARGET_MS = 200.0

FILL = """
INSERT INTO instances (instance_id, app_id, name, status, input, custom_status, generation, created_at,
                       updated_at, step_count, signed, signed_events)
SELECT 'inst-' || lpad(n::text, 7, '0'),
       (ARRAY['orders', 'billing', 'shipping'])[1 + n % 3],
       'Workflow' || (n % 20),
       (ARRAY['COMPLETED', 'COMPLETED', 'COMPLETED', 'COMPLETED', 'RUNNING', 'FAILED', 'PENDING',
              'SUSPENDED', 'TERMINATED', 'COMPLETED'])[1 + n % 10],
       '{"order": ' || n || ', "items": [1, 2, 3]}',
       '{"stage": "step ' || (n % 7) || '"}',
       0,
       now() - interval '30 days' + (n * interval '30 days' / :count),
       now() - interval '30 days' + (n * interval '30 days' / :count) + interval '2 seconds',
       5, false, 0
FROM generate_series(1, :count) AS n
"""


def queries(base: str, client: httpx.Client) -> dict[str, str]:
    """The list's queries; the deep page is found by following 20 `older` links."""
    url = f"{base}/ui/"
    for _ in range(20):
        found = re.search(r'href="(/ui/\?after=[^"]+)"', client.get(url).text)
        assert found, "no next page"
        url = base + found.group(1).replace("&amp;", "&")
    return {
        "first page (all)": f"{base}/ui/",
        "status=RUNNING": f"{base}/ui/?status=RUNNING",
        "status=FAILED,SUSPENDED": f"{base}/ui/?status=FAILED&status=SUSPENDED",
        "name=Workflow7": f"{base}/ui/?name=Workflow7",
        "appID=billing + name": f"{base}/ui/?appID=billing&name=Workflow5",
        "instance ID prefix": f"{base}/ui/?idPrefix=inst-00999",
        "prefix matching none": f"{base}/ui/?idPrefix=nothing-",
        "status=STALLED (none)": f"{base}/ui/?status=STALLED",
        "created in one day": f"{base}/ui/?createdFrom={_day(10)}&createdTo={_day(9)}",
        "oldest first": f"{base}/ui/?sort=oldest",
        "page 21 (keyset)": url,
    }


def _timed(client: httpx.Client, url: str, rounds: int) -> tuple[int, tuple[float, float, float]]:
    """(rows on the page, (p50, p95, max) in ms) of `rounds` GETs after one to warm up."""
    client.get(url).raise_for_status()
    times, rows = [], 0
    for _ in range(rounds):
        t0 = time.perf_counter()
        answer = client.get(url)
        times.append((time.perf_counter() - t0) * 1000)
        rows = answer.text.count("<tr data-id")
    times.sort()
    return rows, (statistics.median(times), times[min(len(times) - 1, int(len(times) * 0.95))], times[-1])


def _day(days_ago: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M", time.gmtime(time.time() - days_ago * 86400))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--instances", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=50)
    args = parser.parse_args(argv)
    server = None if os.environ.get("LEDGERFLOW_DATABASE_URL") else pg_fixture.start_postgres()
    group = ProcessGroup(Path(tempfile.mkdtemp(prefix="bench-dashboard-")))
    try:
        url = os.environ.get("LEDGERFLOW_DATABASE_URL") or server.create_database("bench_dashboard")
        with Store(url) as store:
            store.migrate()
        engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
        began = time.perf_counter()
        with engine.begin() as conn:
            conn.execute(sa.text(FILL), {"count": args.instances})
        with engine.connect() as conn:
            conn.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql("ANALYZE instances")
        engine.dispose()
        print(f"{args.instances:,} instances written in {time.perf_counter() - began:.1f} s")
        env = {"LEDGERFLOW_DATABASE_URL": url, "LEDGERFLOW_BROKER_URL": "memory://localhost/",
               "LEDGERFLOW_APP_ID": "orders", "LEDGERFLOW_API_TOKEN": None, "DAPR_API_TOKEN": None}
        base = start_ledgerflow(group, "api", ["api"], env)
        worst = 0.0
        with httpx.Client(timeout=30) as client:
            print(f"{'query':28} {'rows':>5} {'p50 ms':>7} {'p95 ms':>7} {'max ms':>7}   counts: "
                  f"{'p50 ms':>7} {'p95 ms':>7}")
            for label, target in queries(base, client).items():
                rows, page = _timed(client, target, args.rounds)
                _, counted = _timed(client, str(httpx.URL(target).copy_with(path="/ui/counts")), args.rounds)
                worst = max(worst, page[1])
                print(f"{label:28} {rows:5d} {page[0]:7.1f} {page[1]:7.1f} {page[2]:7.1f}   counts: "
                      f"{counted[0]:7.1f} {counted[1]:7.1f}")
        verdict = "met" if worst < TARGET_MS else "MISSED"
        print(f"worst p95 of a page {worst:.1f} ms: target of {TARGET_MS:.0f} ms {verdict}")
        return 0
    finally:
        group.stop_all()
        if server is not None:
            server.cleanup()


if __name__ == "__main__":
    sys.exit(main())
