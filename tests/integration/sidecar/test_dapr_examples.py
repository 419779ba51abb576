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

from tests.integration.sidecar.conftest import PYTHON, Sidecar

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
