"""Dapr's own Python workflow examples (dapr/python-sdk, examples/workflow, v1.18.3), unmodified,
against `ledgerflow sidecar` on PostgreSQL and Redis: each prints what the examples' README
says it prints (the README's own `expected_stdout_lines`, read from the vendored copy)."""

from __future__ import annotations

import re
import shlex
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from tests.fixtures.processes import ProcessGroup
from tests.integration.sidecar.conftest import PYTHON, Sidecar, start_sidecar

EXAMPLES = Path(__file__).with_name("dapr_examples")
#: The single-app examples whose README step says what they print.
SINGLE_APP = ("simple.py", "simple_aio_client.py", "task_chaining.py", "fan_out_fan_in.py", "versioning.py",
              "pydantic_models.py")
#: Seconds one example may take (the README allows 30-60 on an idle machine with `dapr run`).
TIMEOUT = 150


@dataclass(frozen=True)
class Step:
    commands: list[list[str]]  # each: the example file and its arguments
    expected: list[str]
    ordered: bool


def readme_steps() -> dict[str, Step]:
    """The README's steps, by the example file they run."""
    text = (EXAMPLES / "README.md").read_text()
    steps = {}
    for header, body in re.findall(r"<!--\s*STEP(.*?)-->(.*?)<!--\s*END_STEP\s*-->", text, re.S):
        meta = yaml.safe_load(header)
        commands = [shlex.split(line.split("python3", 1)[1]) for line in body.splitlines() if "python3 " in line]
        files = {c[0] for c in commands}
        if len(files) == 1 and (file := files.pop()) in SINGLE_APP:
            steps[file] = Step(commands, [str(x) for x in meta["expected_stdout_lines"]],
                               meta.get("match_order") != "none")
    return steps


STEPS = readme_steps()


def test_every_single_app_example_has_a_readme_step() -> None:
    assert sorted(STEPS) == sorted(SINGLE_APP)


def _missing(output: str, expected: list[str], ordered: bool) -> list[str]:
    """Expected lines not printed (one after the other, when `ordered`). Searched in the whole
    text: the examples print from several threads at once, so two lines can share one."""
    if not ordered:
        return [line for line in expected if line not in output]
    position = 0
    for index, line in enumerate(expected):
        found = output.find(line, position)
        if found < 0:
            return expected[index:]
        position = found + len(line)
    return []


@pytest.mark.parametrize("example", SINGLE_APP)
def test_dapr_python_example_runs_unmodified(example: str, sidecar: Sidecar, tmp_path: Path) -> None:
    step = STEPS[example]
    output = ""
    for command in step.commands:
        try:
            done = sidecar.run_app([PYTHON, str(EXAMPLES / command[0]), *command[1:]], tmp_path, TIMEOUT)
        except subprocess.TimeoutExpired as exc:
            pytest.fail(f"{example} did not finish in {TIMEOUT} s; its output:\n{exc.stdout}\n{exc.stderr}")
        assert done.returncode == 0, f"{example} exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
        output += done.stdout
    missing = _missing(output, step.expected, step.ordered)
    assert not missing, f"{example} did not print {missing}; it printed:\n{output}"


MULTI_APP = ("multi-app1.py", "multi-app2.py", "multi-app3.py")


def multi_app_steps() -> list[tuple[dict[str, str], Step]]:
    """The README's multi-app steps: (the variables each exports, the step)."""
    text = (EXAMPLES / "README.md").read_text()
    out = []
    for header, body in re.findall(r"<!--\s*STEP(.*?)-->(.*?)<!--\s*END_STEP\s*-->", text, re.S):
        if "multi-app1.py" not in body:
            continue
        exports = dict(line.split(None, 1)[1].split("=", 1) for line in body.splitlines()
                       if line.startswith("export "))
        commands = [_app_command(line) for line in body.splitlines() if "python3 " in line]
        meta = yaml.safe_load(header)
        out.append((exports, Step(commands, [str(x) for x in meta["expected_stdout_lines"]], False)))
    return out


def _app_command(line: str) -> list[str]:
    """`dapr run --app-id X -- python3 FILE &` -> [X, FILE]."""
    words = shlex.split(line.rstrip(" &"))
    return [words[words.index("--app-id") + 1], *words[words.index("python3") + 1:]]


@pytest.mark.parametrize("variant", range(3), ids=["calls", "activity-error", "workflow-error"])
def test_dapr_multi_app_example_runs_unmodified_on_three_sidecars(variant: int, sidecar_env: dict[str, str],
                                                                   procs: ProcessGroup, tmp_path: Path) -> None:
    """multi-app1 calls a child workflow in app 2, which calls an activity in app 3: three apps,
    three sidecars (each started as `dapr run --app-id wfexampleN` would), one database and broker."""
    steps = multi_app_steps()
    assert len(steps) == 3
    exports, step = steps[variant]
    *background, last = step.commands
    sidecars = {app_id: start_sidecar(procs, app_id, sidecar_env, app_id) for app_id, *_ in step.commands}
    apps = [sidecars[app_id].start_app(file, [PYTHON, str(EXAMPLES / file)], tmp_path, **exports)
            for app_id, file in background]
    app_id, file = last
    done = sidecars[app_id].run_app([PYTHON, str(EXAMPLES / file)], tmp_path, TIMEOUT, **exports)
    output = done.stdout + "".join(app.log_text() for app in apps)
    assert done.returncode == 0, output + done.stderr
    missing = _missing(output, step.expected, step.ordered)
    assert not missing, f"the multi-app example did not print {missing}; it printed:\n{output}"
