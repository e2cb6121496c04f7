"""deploy/.env.example lists every variable clypai/settings.py reads, each with a comment."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
SETTINGS = ROOT / "clypai" / "settings.py"
ENV_EXAMPLE = ROOT / "deploy" / ".env.example"
COMPOSE = ROOT / "deploy" / "compose.yaml"
DOCKERFILE = ROOT / "deploy" / "Dockerfile"

HELPERS = {"env", "envbool", "envint", "envfloat", "envlist"}
VARIABLE_LINE = re.compile(r"^#?\s*([A-Z][A-Z0-9_]*)=")


def _first_str(call: ast.Call) -> str | None:
    if call.args and isinstance(call.args[0], ast.Constant) and isinstance(call.args[0].value, str):
        return call.args[0].value
    return None


def variables_read_by_settings(source: str) -> set[str]:
    """Names passed to env()/envbool()/… or os.environ.get()/os.getenv()/os.environ[…]."""
    names = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call):
            func = node.func
            direct = isinstance(func, ast.Name) and func.id in HELPERS
            environ_get = isinstance(func, ast.Attribute) and (
                func.attr == "get"
                and ast.unparse(func.value) == "os.environ"
                or func.attr == "getenv"
                and ast.unparse(func.value) == "os"
            )
            if (direct or environ_get) and (name := _first_str(node)):
                names.add(name)
        elif isinstance(node, ast.Subscript) and ast.unparse(node.value) == "os.environ":
            if isinstance(node.slice, ast.Constant) and isinstance(node.slice.value, str):
                names.add(node.slice.value)
    return names


def example_lines() -> list[str]:
    return ENV_EXAMPLE.read_text().splitlines()


def variables_in_example() -> dict[str, int]:
    """Each variable of .env.example (set or commented out) and its line index."""
    found = {}
    for index, line in enumerate(example_lines()):
        match = VARIABLE_LINE.match(line)
        if match:
            assert match.group(1) not in found, f"{match.group(1)} is listed twice"
            found[match.group(1)] = index
    return found


def test_the_parser_finds_each_kind_of_read():
    source = (
        "import os\n"
        "A = env('ONE')\nB = envbool('TWO', False)\nC = envint('THREE', 1)\n"
        "D = envfloat('FOUR', 1.0)\nE = envlist('FIVE')\nF = os.environ.get('SIX', 'x')\n"
        "G = os.getenv('SEVEN')\nH = os.environ['EIGHT']\n"
        "def env(name):\n    return os.environ.get(f'{name}_FILE')\n"
    )
    assert variables_read_by_settings(source) == {
        "ONE",
        "TWO",
        "THREE",
        "FOUR",
        "FIVE",
        "SIX",
        "SEVEN",
        "EIGHT",
    }


def test_settings_reads_the_variables_we_know_of():
    # A floor, so a parser that finds nothing cannot pass the test below.
    read = variables_read_by_settings(SETTINGS.read_text())
    assert {
        "SECRET_KEY",
        "DEBUG",
        "DATABASE_URL",
        "REDIS_URL",
        "CLYPAI_S3_BUCKET",
        "CLYPAI_S3_SECRET_ACCESS_KEY",
        "CLYPAI_VAR_DIR",
        "CLYPAI_MAX_UPLOAD_BYTES",
    } <= read


def test_every_variable_settings_reads_is_in_the_env_example():
    read = variables_read_by_settings(SETTINGS.read_text())
    missing = sorted(read - set(variables_in_example()))
    assert missing == [], f"add these to deploy/.env.example, with a comment: {missing}"


def test_every_variable_in_the_env_example_is_used():
    read = variables_read_by_settings(SETTINGS.read_text())
    compose = COMPOSE.read_text()
    unused = sorted(
        name
        for name in variables_in_example()
        if name not in read and not re.search(rf"\${{{name}\b", compose)
    )
    assert unused == [], f"neither settings.py nor compose.yaml reads: {unused}"


def test_every_variable_has_a_comment_above_it():
    lines = example_lines()
    for name, index in variables_in_example().items():
        above = lines[index - 1] if index else ""
        assert above.startswith("# ") and not VARIABLE_LINE.match(above), (
            f"{name} needs a comment line of its own above it"
        )


def test_the_compose_file_runs_the_whole_system():
    compose = yaml.safe_load(COMPOSE.read_text())
    services = compose["services"]
    assert services["postgres"]["image"] == "postgres:16"
    assert services["redis"]["image"] == "redis:7"
    assert services["minio"]["image"].startswith("minio/minio")
    assert services["minio-init"]["image"].startswith("minio/mc")
    assert "mc mb" in " ".join(services["minio-init"]["command"])
    # gunicorn as `manage.py serve` starts it (tests/deploy/test_compose.py).
    assert services["web"]["command"] == ["python", "manage.py", "serve", "--web-only"]
    # Workers per queue (tests/deploy/test_compose.py checks every queue is served).
    workers = [name for name in services if name.startswith("worker-")]
    assert {"worker-transcribe", "worker-analysis", "worker-render", "worker-gpu"} <= set(workers)
    for name in workers:
        assert services[name]["command"][:3] == ["python", "manage.py", "rqworker"]
    # Recovery runs as a loop process of its own, not as a job that one error ends.
    assert services["sweep"]["command"] == ["python", "manage.py", "sweep", "--loop"]
    assert services["sweep"]["restart"] == "unless-stopped"
    for name in ("web", "worker-analysis", "worker-gpu", "migrate", "sweep"):
        env = services[name]["environment"]
        assert env["DATABASE_URL"].startswith("${DATABASE_URL:-postgres://")
        assert "@postgres:5432/" in env["DATABASE_URL"]
        assert env["REDIS_URL"] == "${REDIS_URL:-redis://redis:6379/0}"
        assert env["CLYPAI_S3_ENDPOINT_URL"] == "${CLYPAI_S3_ENDPOINT_URL:-http://minio:9000}"
        assert services[name]["build"]["dockerfile"] == "deploy/Dockerfile"


def test_the_dockerfile_builds_the_documented_image():
    text = DOCKERFILE.read_text()
    assert "FROM python:3.11-slim-bookworm" in text.splitlines()
    # Its install steps are deploy/install.sh's, as make install's are
    # (tests/deploy/test_compose.py runs the script).
    assert "RUN /tmp/install.sh system" in text
    assert "RUN deploy/install.sh python python openai" in text  # both transcription engines
    assert "pip install" not in text
    assert "manage.py prepare_models" in text  # weights assembled at build time
    assert "collectstatic --noinput" in text
    assert 'CMD ["python", "manage.py", "serve", "--web-only"]' in text  # serve's gunicorn
