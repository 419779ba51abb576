"""The distribution is everything a process needs: build the wheel from the repository as
the Docker image's `pip install .` sees it (.dockerignore applied), unpack it into a clean
virtual environment (the dependencies come from this interpreter's site-packages as a plain
path, so the editable checkout stays invisible), import every module from it and migrate a
database with the migrations it ships."""

from __future__ import annotations

import fnmatch
import json
import os
import shutil
import site
import subprocess
import sys
import zipfile
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]

IMPORT_ALL = """
import importlib, json, sys
modules = json.loads(sys.argv[1])
for name in modules:
    module = importlib.import_module(name)
    assert module.__file__.startswith(sys.prefix), (name, module.__file__)
from persistence.store import Store
store = Store(sys.argv[2])
store.migrate()  # the migrations are package data of the wheel
store.close()
print(len(modules))
"""


def build_context(target: Path) -> Path:
    """The repository minus what .dockerignore leaves out of the image's build context."""
    patterns = [line.strip().removeprefix("**/") for line in (REPO / ".dockerignore").read_text().splitlines()
                if line.strip() and not line.startswith("#")]
    shutil.copytree(REPO, target, ignore=lambda _dir, names: [n for n in names
                                                             if any(fnmatch.fnmatch(n, p) for p in patterns)])
    return target


def source_packages() -> set[str]:
    """Top-level packages of the repository that are not tests, benchmarks or examples."""
    return {p.parent.name for p in REPO.glob("*/__init__.py")} - {"tests", "bench", "examples"}


def test_the_wheel_holds_every_package_and_each_module_imports_in_a_clean_venv(tmp_path: Path) -> None:
    context = build_context(tmp_path / "context")
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path / "dist"),
                            str(context)], capture_output=True, text=True)
    assert built.returncode == 0, built.stderr
    (wheel,) = (tmp_path / "dist").glob("ledgerflow-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert {n.split("/")[0] for n in names if n.endswith("/__init__.py")} == source_packages()
    shipped = {p.relative_to(REPO).as_posix() for folder in ("templates", "static")
               for p in (REPO / "ledgerflow" / "dashboard" / folder).iterdir()}
    assert shipped and shipped <= set(names)  # the dashboard's templates and static files (htmx)

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    (purelib,) = venv.glob("lib/python*/site-packages")
    zipfile.ZipFile(wheel).extractall(purelib)
    (purelib / "deps.pth").write_text("\n".join(site.getsitepackages()) + "\n")

    # Alembic's scripts run inside `migrate` (below), not by import.
    modules = sorted(n[:-3].replace("/", ".").removesuffix(".__init__") for n in names
                     if n.endswith(".py") and not n.startswith("persistence/migrations/"))
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    done = subprocess.run([str(venv / "bin" / "python"), "-c", IMPORT_ALL, json.dumps(modules),
                           f"sqlite:///{tmp_path / 'lf.db'}"],
                          cwd=tmp_path, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str(len(modules))


def test_the_dockerfile_installs_the_project_not_a_list_of_packages() -> None:
    steps = [line.split() for line in (REPO / "Dockerfile").read_text().splitlines()
             if line.strip() and not line.startswith("#")]
    copies = [step[1:] for step in steps if step[0] == "COPY"]
    assert copies == [[".", "/tmp/ledgerflow-src"], ["examples", "./examples"]]
    assert ["RUN", "pip", "install", "\"/tmp/ledgerflow-src[otel,flower]\"", "&&", "rm", "-rf", "/tmp/ledgerflow-src"] in steps
