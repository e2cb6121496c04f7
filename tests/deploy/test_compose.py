"""deploy/compose.yaml: a worker for every queue (and a GPU one for `transcribe`), the
sweep, and `docker compose config` where Docker Compose v2 is installed; the install
steps that `make install` and deploy/Dockerfile share (deploy/install.sh), run here."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from django.conf import settings

from clypai.queues import QUEUES

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "deploy" / "compose.yaml"
INSTALL = ROOT / "deploy" / "install.sh"

# What `docker compose config` needs set (the compose file refuses to start without them).
COMPOSE_ENV = {"POSTGRES_PASSWORD": "test-only", "MINIO_ROOT_PASSWORD": "test-only-secret"}


def _services() -> dict:
    return yaml.safe_load(COMPOSE.read_text())["services"]


def _workers() -> dict[str, list[str]]:
    """Each worker service and the queues its `manage.py rqworker` serves."""
    found = {}
    for name, service in _services().items():
        command = service.get("command") or []
        if command[:3] == ["python", "manage.py", "rqworker"]:
            found[name] = [arg for arg in command[3:] if not arg.startswith("-")]
    return found


def _seconds(duration: str) -> float:
    """A compose duration (1h, 90m, 30s, 1h30m) in seconds."""
    units = {"h": 3600, "m": 60, "s": 1}
    parts = re.findall(r"(\d+(?:\.\d+)?)(h|m|s)", str(duration))
    assert parts and "".join(n + u for n, u in parts) == str(duration), duration
    return sum(float(n) * units[u] for n, u in parts)


def test_every_queue_the_code_uses_has_a_worker_that_always_runs():
    assert set(QUEUES) == set(settings.RQ_QUEUES)
    services = _services()
    served = {
        queue
        for name, queues in _workers().items()
        if not services[name].get("profiles")  # started by a plain `up`
        for queue in queues
    }
    assert served == set(QUEUES)
    # One service per queue of media work, each scaled on its own.
    workers = _workers()
    for queue in ("transcribe", "analysis", "render"):
        assert [name for name, queues in workers.items() if queues == [queue]], queue


def test_the_gpu_worker_serves_transcribe_on_an_nvidia_device():
    gpu = _services()["worker-gpu"]
    assert gpu["profiles"] == ["gpu"]
    assert _workers()["worker-gpu"] == ["transcribe"]
    assert gpu["environment"]["CLYPAI_WHISPER_DEVICE"] == "cuda"
    (device,) = gpu["deploy"]["resources"]["reservations"]["devices"]
    assert device["driver"] == "nvidia" and device["capabilities"] == ["gpu"]
    assert device["count"] == 1
    # Same database, Redis and storage as every other worker.
    env = gpu["environment"]
    assert env["DATABASE_URL"] == _services()["worker-analysis"]["environment"]["DATABASE_URL"]
    assert env["CLYPAI_S3_BUCKET"] and env["REDIS_URL"]
    # The CPU transcribe worker can be turned down when GPUs take the queue.
    assert _services()["worker-transcribe"]["deploy"]["replicas"] == "${TRANSCRIBE_CPU_WORKERS:-1}"


def test_workers_are_given_the_time_to_finish_their_longest_task_on_stop():
    services = _services()
    for name, queues in _workers().items():
        longest = max(settings.CLYPAI_QUEUE_TIMEOUTS[queue] for queue in queues)
        assert _seconds(services[name]["stop_grace_period"]) >= longest, name
        assert services[name]["restart"] == "unless-stopped", name


def test_the_web_process_is_gunicorn_as_serve_starts_it_in_compose_and_the_image():
    """Not a gunicorn command line of its own, which drifted from serve's (plain-text
    access lines, no graceful timeout, the metrics of one worker of three)."""
    web = _services()["web"]
    assert web["command"] == ["python", "manage.py", "serve", "--web-only"]
    assert web["environment"]["PORT"] == "8000"  # the port compose publishes and probes
    assert "8000" in web["ports"][0] and "127.0.0.1:8000/healthz" in str(web["healthcheck"])
    from clypai.background import HAND_BACK_MARGIN_SECONDS

    graceful = settings.CLYPAI_STOP_GRACE_SECONDS + HAND_BACK_MARGIN_SECONDS
    assert _seconds(web["stop_grace_period"]) > graceful
    dockerfile = (ROOT / "deploy" / "Dockerfile").read_text()
    assert 'CMD ["python", "manage.py", "serve", "--web-only"]' in dockerfile
    for text in (COMPOSE.read_text(), dockerfile):
        assert "gunicorn\n" not in text and '"gunicorn"' not in text and "- gunicorn" not in text
    # Workers and the sweep: the same commands serve runs.
    for name, service in _services().items():
        if name.startswith("worker-"):
            assert service["command"][:3] == ["python", "manage.py", "rqworker"], name


def test_the_sweep_runs_as_a_loop_process():
    sweep = _services()["sweep"]
    assert sweep["command"] == ["python", "manage.py", "sweep", "--loop"]
    assert sweep["restart"] == "unless-stopped"


def _compose_v2() -> list[str] | None:
    for command in (["docker", "compose"], ["docker-compose"]):
        if shutil.which(command[0]) is None:
            continue
        done = subprocess.run([*command, "version", "--short"], capture_output=True, text=True)
        if done.returncode == 0 and done.stdout.strip().lstrip("v").startswith("2"):
            return command
    return None


@pytest.mark.skipif(_compose_v2() is None, reason="Docker Compose v2 is not installed here")
def test_docker_compose_config_accepts_the_file_with_and_without_the_gpu_profile():
    compose = _compose_v2()
    env = {**os.environ, **COMPOSE_ENV}
    for profile in ([], ["--profile", "gpu"]):
        done = subprocess.run(
            [*compose, "-f", str(COMPOSE), *profile, "config", "--quiet"],
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr
    done = subprocess.run(
        [*compose, "-f", str(COMPOSE), "--profile", "gpu", "config", "--services"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert set(done.stdout.split()) == set(_services())


# The install steps -----------------------------------------------------------------------


def _recipe(target: str) -> list[str]:
    """The commands `make` would run for `target` (make -n prints them, runs nothing)."""
    # Under `make test` this make is a sub-make: it would print "Entering directory".
    env = {k: v for k, v in os.environ.items() if k not in ("MAKELEVEL", "MAKEFLAGS", "MFLAGS")}
    done = subprocess.run(
        ["make", "--no-print-directory", "-n", "-B", target],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed here")
def test_make_install_and_the_dockerfile_install_through_the_one_script():
    venv = _recipe(".venv/.installed")
    assert "deploy/install.sh python .venv/bin/python dev,openai --editable" in venv
    assert not [line for line in venv if "pip install" in line]
    assert _recipe("ffmpeg") == ["deploy/install.sh system"]
    dockerfile = (ROOT / "deploy" / "Dockerfile").read_text()
    runs = [line for line in dockerfile.splitlines() if line.startswith("RUN ")]
    assert "RUN /tmp/install.sh system && rm -rf /var/lib/apt/lists/* /tmp/install.sh" in runs
    assert "RUN deploy/install.sh python python openai" in runs
    assert "COPY deploy/install.sh /tmp/install.sh" in dockerfile
    assert "pip " not in dockerfile and "apt-get" not in dockerfile
    assert "deploy/install.sh" not in (ROOT / "deploy" / "Dockerfile.dockerignore").read_text()


def _fake_python(tmp_path) -> tuple[Path, Path]:
    """An executable standing in for PYTHON that records each call's arguments."""
    calls = tmp_path / "calls"
    python = tmp_path / "python"
    python.write_text(f'#!/bin/sh\necho "$*" >> {calls}\n')
    python.chmod(0o755)
    return python, calls


@pytest.mark.parametrize(
    ("args", "project"),
    [
        (["dev,openai", "--editable"], "-m pip install --quiet -e .[dev,openai]"),
        (["openai"], "-m pip install --quiet .[openai]"),
        ([], "-m pip install --quiet .[openai]"),
    ],
)
def test_the_install_script_pins_torch_first_and_the_model_wheels_without_their_deps(
    tmp_path, args, project
):
    python, calls = _fake_python(tmp_path)
    done = subprocess.run(
        [str(INSTALL), "python", str(python), *args], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert calls.read_text().splitlines() == [
        "-m pip install --quiet --upgrade pip",
        "-m pip install --quiet torch==2.13.0",
        project,
        "-m pip install --quiet --no-deps mediapipe==0.10.21",
        "-m pip install --quiet --no-deps silero-vad==6.2.3 resemblyzer==0.1.4",
    ]


def test_the_install_script_refuses_what_it_does_not_know(tmp_path):
    python, calls = _fake_python(tmp_path)
    for args in ([], ["nonsense"], ["python"], ["python", str(python), "openai", "--other"]):
        done = subprocess.run([str(INSTALL), *args], capture_output=True, text=True, timeout=60)
        assert done.returncode == 2 and "usage:" in done.stderr, args
    assert not calls.exists()  # nothing ran


def test_the_install_script_leaves_an_installed_ffmpeg_alone(tmp_path):
    assert shutil.which("ffmpeg") and shutil.which("ffprobe")
    # apt-get, if called, would leave a trace: a fake one first on the PATH.
    apt = tmp_path / "apt-get"
    apt.write_text(f"#!/bin/sh\ntouch {tmp_path / 'apt-called'}\n")
    apt.chmod(0o755)
    env = {**os.environ, "PATH": f"{tmp_path}:{os.environ['PATH']}"}
    done = subprocess.run(
        [str(INSTALL), "system"], capture_output=True, text=True, env=env, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert not (tmp_path / "apt-called").exists()
