"""The layers of ARCHITECTURE.md hold: import-linter's contracts (in pyproject.toml) pass,
and they would catch the import circle the worker side once had."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _lint_imports(*args: str) -> subprocess.CompletedProcess:
    tool = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
    assert tool, "import-linter is a dev dependency (pyproject.toml)"
    return subprocess.run(
        [tool, "--no-cache", *args], cwd=ROOT, capture_output=True, text=True, timeout=300
    )


def test_every_import_contract_is_kept():
    result = _lint_imports()
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "0 broken" in result.stdout


def test_the_pipeline_contract_names_every_clips_module_but_the_pipeline():
    """A new module in clips/ must be added to what the pipeline may not import."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    (pipeline,) = [c for c in config["contracts"] if c["id"] == "pipeline"]
    modules = {
        f"clips.{path.stem if path.is_file() else path.name}"
        for path in (ROOT / "clips").iterdir()
        if (path.suffix == ".py" and path.stem != "__init__")
        or (path.is_dir() and (path / "__init__.py").exists())
    }
    modules -= {"clips.pipeline", "clips.migrations"}
    assert modules <= set(pipeline["forbidden_modules"])


def test_the_worker_side_layers_would_catch_the_old_circle(tmp_path):
    """states importing the clip's processing again (the circle the redesign broke) is
    refused by the layers contract."""
    config = (ROOT / "pyproject.toml").read_text()
    fake = tmp_path / "clips_circle.toml"
    # A copy of the contracts run against a tree where states imports clip_processing.
    tree = tmp_path / "tree"
    shutil.copytree(ROOT, tree, ignore=shutil.ignore_patterns(".venv", ".git", "var", "*.pyc"))
    states = tree / "clips" / "states.py"
    states.write_text(states.read_text() + "\nfrom . import clip_processing  # noqa\n")
    fake.write_text(config)
    tool = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
    result = subprocess.run(
        [tool, "--no-cache", "--contract", "clips-layers", str(fake)],
        cwd=tree,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode != 0
    assert "clips.states -> clips.clip_processing" in result.stdout
