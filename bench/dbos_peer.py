"""DBOS Transact as a peer baseline for P8, run as its own process on the same PostgreSQL.

`python -m bench.dbos_peer DATABASE_URL WORKFLOWS STEPS` starts WORKFLOWS workflows of STEPS
no-op `@DBOS.step` functions each with `DBOS.start_workflow` (the shape of issue 12's P8),
waits for every result and prints one JSON line: the seconds from the first start to the last
result, and the process's CPU seconds over that time. DBOS is a library: its workflows run in
this process's thread pool, with its system tables in the given database.
"""

from __future__ import annotations

import json
import sys
import time


def main(url: str, workflows: int, steps: int) -> None:
    from dbos import DBOS, DBOSConfig

    config: DBOSConfig = {"name": "ledgerflow-bench-peer", "system_database_url": url, "log_level": "WARNING",
                          "console_log_level": "WARNING"}
    DBOS(config=config)

    @DBOS.step()
    def noop(value: int) -> int:
        return value

    @DBOS.workflow()
    def chain(n: int) -> int:
        for i in range(n):
            noop(i)
        return n

    DBOS.launch()
    chain(1)  # warm: tables, pools, threads
    cpu0, t0 = time.process_time(), time.monotonic()
    handles = [DBOS.start_workflow(chain, steps) for _ in range(workflows)]
    results = [h.get_result() for h in handles]
    elapsed, cpu = time.monotonic() - t0, time.process_time() - cpu0
    assert results == [steps] * workflows, "DBOS returned wrong results"
    print(json.dumps({"seconds": elapsed, "cpu_seconds": cpu, "workflows": workflows, "steps": steps}), flush=True)
    DBOS.destroy()


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]))
