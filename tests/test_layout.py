"""The installed layout: exactly five top-level names, and the ``cairn`` command runs.

The wheel is built from a copy of the checkout (so the build leaves nothing in the working
tree) with the same setuptools configuration users install with.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
TOP_LEVEL = {"memory", "activities", "workflows", "cairn", "worker"}
NOT_COPIED = shutil.ignore_patterns(
    ".git", ".venv", ".cairn", "build", "dist", "*.egg-info", "__pycache__", "*_cache"
)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Iterator[zipfile.ZipFile]:
    tmp = tmp_path_factory.mktemp("wheel")
    source = tmp / "src"
    shutil.copytree(ROOT, source, ignore=NOT_COPIED)
    built = subprocess.run(
        [
            *(sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation"),
            *("--wheel-dir", str(tmp / "dist"), str(source)),
        ],
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert built.returncode == 0, built.stdout + built.stderr
    (path,) = (tmp / "dist").glob("cairn_agents-*.whl")
    with zipfile.ZipFile(path) as archive:
        yield archive


def dist_info(wheel: zipfile.ZipFile, name: str) -> str:
    (path,) = [n for n in wheel.namelist() if n.endswith(f".dist-info/{name}")]
    return wheel.read(path).decode()


def test_the_wheel_declares_exactly_five_top_level_names(wheel: zipfile.ZipFile) -> None:
    assert set(dist_info(wheel, "top_level.txt").split()) == TOP_LEVEL


def test_the_wheel_installs_files_under_those_names_only(wheel: zipfile.ZipFile) -> None:
    installed = {
        name.split("/")[0].removesuffix(".py")
        for name in wheel.namelist()
        if ".dist-info/" not in name
    }
    assert installed == TOP_LEVEL


def test_the_wheel_ships_the_subpackages(wheel: zipfile.ZipFile) -> None:
    names = set(wheel.namelist())
    assert {"cairn/cli/app.py", "cairn/cli/__main__.py", "cairn/runtime.py"} <= names
    assert not any(name.startswith(("tests/", "bench/")) for name in names)


def test_the_console_script_is_cairn_cli_app_main(wheel: zipfile.ZipFile) -> None:
    scripts = dist_info(wheel, "entry_points.txt")
    assert "cairn = cairn.cli.app:main" in scripts.splitlines()


def test_python_m_cairn_cli_runs() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "cairn.cli", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr
    assert "Usage: cairn" in done.stdout


def test_importing_cairn_loads_neither_the_cli_nor_a_database_driver() -> None:
    probe = (
        "import sys, cairn; "
        "print(sorted(m for m in ('typer', 'sqlalchemy', 'cairn.cli', 'cairn.runtime') "
        "if m in sys.modules))"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, cwd=ROOT
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
