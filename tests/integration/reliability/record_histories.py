"""Record the D2 histories: 200 runs of tests/fixtures/chaos_app.py on the embedded runtime.

    python -m tests.integration.reliability.record_histories          # only when the file is missing
    python -m tests.integration.reliability.record_histories --force  # rewrite (an intended change only)

Writes `recorded_histories.json`: for each run its workflow, input, final status and the
stored history as `[type, payload]` pairs, exactly as the store holds them. The D2 test
replays every one against the current code on each CI run; re-recording after a change to
the engine or to chaos_app.py hides the very breakage D2 exists to catch, so add runs rather
than re-record old ones.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
OUT = HERE / "recorded_histories.json"


def workload(rng: random.Random) -> list[tuple[str, object, str | None]]:
    """(workflow, input, event to raise or None): 200 runs."""
    runs: list[tuple[str, object, str | None]] = []
    runs += [("fan", {"n": rng.randint(1, 6)}, None) for _ in range(30)]
    runs += [("chain", {"x": rng.randint(0, 50), "n": rng.randint(1, 4)}, None) for _ in range(30)]
    runs += [("sleeper", round(rng.uniform(0.01, 0.05), 3), None) for _ in range(15)]
    runs += [("timers_then_work", round(rng.uniform(0.01, 0.05), 3), None) for _ in range(15)]
    runs += [("waiter", None, "go") for _ in range(20)]
    runs += [("evolving", None, "go") for _ in range(15)]
    runs += [("counter", {"count": 0, "per_generation": 2, "until": rng.randint(1, 5)}, "inc") for _ in range(15)]
    runs += [("big_result", rng.randint(0, 100), None) for _ in range(10)]
    runs += [("big_input", rng.randint(0, 100), None) for _ in range(10)]
    runs += [("held", {"hold": 0, "value": rng.randint(0, 9)}, None) for _ in range(10)]
    runs += [("family", rng.randint(1, 4), None) for _ in range(15)]
    runs += [("broken", rng.randint(0, 9), None) for _ in range(15)]
    assert len(runs) == 200
    return runs


def record() -> list[dict]:
    tmp = tempfile.mkdtemp(prefix="lf-d2-")
    os.environ.update({
        "LEDGERFLOW_DATABASE_URL": f"sqlite:///{tmp}/lf.db",
        "LEDGERFLOW_BROKER_URL": "memory://localhost/",
        "LEDGERFLOW_APP_ID": "d2",
        "LEDGERFLOW_TICK_INTERVAL": "0.05",
    })
    os.environ.pop("LEDGERFLOW_CHAOS_LEDGER", None)
    import ledgerflow as wf
    from persistence.store import Store
    from tests.fixtures import chaos_app

    chaos_app.wfr.start()
    client = wf.DaprWorkflowClient()
    store = Store(os.environ["LEDGERFLOW_DATABASE_URL"])
    out = []
    try:
        rng = random.Random(20240601)
        started = []
        for i, (name, payload, event) in enumerate(workload(rng)):
            iid = f"d2-{i:03d}-{name}"
            client.schedule_new_workflow(name, input=payload, instance_id=iid)
            started.append((iid, name, payload, event))
        for iid, name, payload, event in started:
            if event is not None:
                client.wait_for_workflow_start(iid, timeout_in_seconds=60)
                times = payload["until"] if name == "counter" else 1
                for _ in range(times):
                    client.raise_workflow_event(iid, event, data={"by": "d2"})
        for iid, name, payload, event in started:
            state = client.wait_for_workflow_completion(iid, timeout_in_seconds=120)
            assert state is not None and state.runtime_status.name in ("COMPLETED", "FAILED"), (iid, state)
            time.sleep(0)
            events = [[e.type, e.payload] for e in store.history(iid)]
            out.append({"instance_id": iid, "workflow": name, "input": payload,
                        "status": state.runtime_status.name, "events": events})
    finally:
        client.close()
        chaos_app.wfr.shutdown()
        store.close()
    return out


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--force", action="store_true")
    args = parser.parse_args()
    if OUT.exists() and not args.force:
        print(f"{OUT} exists; pass --force to rewrite it (only for an intended change)")
        return 0
    runs = record()
    OUT.write_text(json.dumps(runs, separators=(",", ":"), sort_keys=True) + "\n")
    print(f"wrote {len(runs)} histories ({sum(len(r['events']) for r in runs)} events) to {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
