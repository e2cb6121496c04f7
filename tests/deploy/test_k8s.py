"""deploy/k8s: every manifest loads, the kustomize base builds (with kustomize or kubectl
where installed, else with the builder below, which reads its resources list), each
Kubernetes object validates against the schemas of the version the README names
(`kubernetes-validate`, offline), KEDA's objects are checked for what KEDA reads, and
the invariants of deploy/SCALING.md hold: a worker Deployment for every queue the code
uses, the GPU one with `nvidia.com/gpu: 1` and scaled to zero, grace periods at least
the longest task, readiness on /readyz, budgets for disruptions."""

from __future__ import annotations

import ast
import re
import shutil
import subprocess
from pathlib import Path

import kubernetes_validate
import pytest
import yaml
from django.conf import settings

from clypai.queues import QUEUES

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
BASE = K8S / "base"
OVERLAY = K8S / "overlays" / "example"
KUBERNETES_VERSION = "1.33"
SECRET = "clypai-secrets"
SECRET_KEYS = {
    "DATABASE_URL",
    "REDIS_URL",
    "REDIS_ADDRESS",  # KEDA's Redis Lists scaler: host:port
    "REDIS_PASSWORD",
    "CLYPAI_S3_ACCESS_KEY_ID",
    "CLYPAI_S3_SECRET_ACCESS_KEY",
    "SECRET_KEY",
}


def _kustomize() -> list[str] | None:
    if shutil.which("kustomize"):
        return ["kustomize", "build"]
    if shutil.which("kubectl"):
        return ["kubectl", "kustomize"]
    return None


def _documents(text: str) -> list[dict]:
    return [doc for doc in yaml.safe_load_all(text) if doc]


def _own_build(folder: Path) -> list[dict]:
    """The objects of a kustomization that lists plain resources and common labels (all
    the base uses): what `kustomize build` makes of it, without kustomize."""
    kustomization = yaml.safe_load((folder / "kustomization.yaml").read_text())
    assert set(kustomization) <= {"apiVersion", "kind", "labels", "resources"}, (
        "the base uses more of kustomize than this builder knows"
    )
    objects = []
    for entry in kustomization["resources"]:
        path = folder / entry
        objects += _own_build(path) if path.is_dir() else _documents(path.read_text())
    for labels in kustomization.get("labels", []):
        assert not labels.get("includeSelectors") and not labels.get("includeTemplates")
        for obj in objects:
            obj.setdefault("metadata", {}).setdefault("labels", {}).update(labels["pairs"])
    return objects


def _build(folder: Path) -> list[dict]:
    command = _kustomize()
    if command is None:
        return _own_build(folder)
    done = subprocess.run(
        [*command, str(folder)], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    return _documents(done.stdout)


@pytest.fixture(scope="module")
def base() -> list[dict]:
    return _build(BASE)


def _of(objects, kind: str) -> dict[str, dict]:
    return {obj["metadata"]["name"]: obj for obj in objects if obj["kind"] == kind}


def _container(obj) -> dict:
    (container,) = obj["spec"]["template"]["spec"]["containers"]
    return container


def _worker_queues(objects) -> dict[str, list[str]]:
    """Each worker Deployment and the queues its `manage.py rqworker` serves."""
    found = {}
    for name, deployment in _of(objects, "Deployment").items():
        command = _container(deployment).get("command", [])
        if command[:3] == ["python", "manage.py", "rqworker"]:
            found[name] = [arg for arg in command[3:] if not arg.startswith("-")]
    return found


def _is_keda(obj) -> bool:
    return obj["apiVersion"].startswith("keda.sh/")


# Loading and validating --------------------------------------------------------------


def test_every_manifest_file_loads():
    files = sorted(K8S.rglob("*.yaml"))
    assert len(files) >= 9
    for path in files:
        for doc in _documents(path.read_text()):
            assert isinstance(doc, dict) and doc.get("kind"), path


def test_the_readme_names_the_kubernetes_version_the_manifests_are_validated_for():
    readme = (ROOT / "README.md").read_text()
    assert f"Kubernetes {KUBERNETES_VERSION}" in readme
    assert f"Kubernetes {KUBERNETES_VERSION}" in (BASE / "kustomization.yaml").read_text()


def test_each_object_of_the_base_validates_against_kubernetes_schemas(base):
    kinds = {obj["kind"] for obj in base if not _is_keda(obj)}
    assert kinds == {
        "ConfigMap",
        "Deployment",
        "Service",
        "Ingress",
        "Job",
        "PodDisruptionBudget",
    }
    for obj in base:
        if not _is_keda(obj):
            # strict: a field the schema does not know (a typo) fails too
            kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)


def test_the_schemas_catch_a_broken_manifest(base):
    broken = yaml.safe_load(yaml.safe_dump(_of(base, "Deployment")["clypai-web"]))
    broken["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["httpGet"]["port"] = [1]
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSION, strict=True)
    typo = yaml.safe_load(yaml.safe_dump(_of(base, "Deployment")["clypai-web"]))
    typo["spec"]["template"]["spec"]["terminationGracePeriod"] = 30
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(typo, KUBERNETES_VERSION, strict=True)


@pytest.mark.skipif(_kustomize() is None, reason="neither kustomize nor kubectl is installed")
def test_the_builder_here_makes_what_kustomize_makes(base):
    def key(obj):
        return (obj["kind"], obj["metadata"]["name"])

    assert sorted(_own_build(BASE), key=key) == sorted(base, key=key)


@pytest.mark.skipif(_kustomize() is None, reason="neither kustomize nor kubectl is installed")
def test_the_example_overlay_builds_and_validates():
    objects = _build(OVERLAY)
    assert {obj["metadata"].get("namespace") for obj in objects if obj["kind"] != "Namespace"} == {
        "clypai"
    }
    secret = _of(objects, "Secret")[SECRET]
    assert set(secret["data"]) == SECRET_KEYS
    for obj in objects:
        if not _is_keda(obj):
            kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
    for deployment in _of(objects, "Deployment").values():
        assert _container(deployment)["image"].startswith("registry.example.com/clypai:")
    assert set(_of(objects, "Job")) == {"clypai-migrate-2026-12-1"}


# Invariants -----------------------------------------------------------------------------


def test_every_queue_the_code_uses_has_a_worker_deployment(base):
    assert set(QUEUES) == set(settings.RQ_QUEUES)
    served = [queue for queues in _worker_queues(base).values() for queue in queues]
    assert sorted(served) == sorted(QUEUES)  # each queue once: one Deployment grows on it
    for queue in ("transcribe", "analysis", "render"):
        assert _worker_queues(base)[f"clypai-worker-{queue}"] == [queue]


def test_the_transcribe_worker_runs_on_a_gpu(base):
    deployment = _of(base, "Deployment")["clypai-worker-transcribe"]
    container = _container(deployment)
    assert container["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert {"name": "CLYPAI_WHISPER_DEVICE", "value": "cuda"} in container["env"]
    tolerations = deployment["spec"]["template"]["spec"]["tolerations"]
    assert any(t["key"] == "nvidia.com/gpu" for t in tolerations)
    # No other worker holds a GPU.
    for name, other in _of(base, "Deployment").items():
        if name != "clypai-worker-transcribe":
            assert "nvidia.com/gpu" not in _container(other).get("resources", {}).get(
                "limits", {}
            ), name


def test_a_worker_is_given_its_longest_task_to_finish_when_it_stops(base):
    config = _of(base, "ConfigMap")["clypai-config"]["data"]
    longest_render = max(
        settings.CLYPAI_RENDER_TIMEOUT_SECONDS, float(config["CLYPAI_RENDER_TIMEOUT_SECONDS"])
    )
    deployments = _of(base, "Deployment")
    for name, queues in _worker_queues(base).items():
        longest_task = max(settings.CLYPAI_QUEUE_TIMEOUTS[queue] for queue in queues)
        configured = max(
            float(config.get(f"CLYPAI_{queue.upper()}_QUEUE_TIMEOUT_SECONDS", 0))
            for queue in queues
        )
        grace = deployments[name]["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
        assert grace >= max(longest_render, longest_task, configured), name


def test_the_web_is_ready_on_readyz_alive_on_healthz_and_reached_through_service_and_ingress(
    base,
):
    web = _of(base, "Deployment")["clypai-web"]
    container = _container(web)
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    # gunicorn as `manage.py serve` starts it (tests/deploy/test_compose.py says the same).
    assert container["command"] == ["python", "manage.py", "serve", "--web-only"]
    ports = {port["name"]: port["containerPort"] for port in container["ports"]}
    assert container["readinessProbe"]["httpGet"]["port"] in ports
    pod_labels = web["spec"]["template"]["metadata"]["labels"]
    service = _of(base, "Service")["clypai-web"]
    assert service["spec"]["selector"].items() <= pod_labels.items()
    (service_port,) = service["spec"]["ports"]
    assert service_port["targetPort"] in ports
    (rule,) = _of(base, "Ingress")["clypai"]["spec"]["rules"]
    backend = rule["http"]["paths"][0]["backend"]["service"]
    assert backend == {"name": "clypai-web", "port": {"name": service_port["name"]}}


def test_each_deployment_selects_its_own_pods(base):
    for name, deployment in _of(base, "Deployment").items():
        selector = deployment["spec"]["selector"]["matchLabels"]
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert selector.items() <= labels.items(), name
        others = [
            other
            for other, obj in _of(base, "Deployment").items()
            if other != name
            and selector.items() <= obj["spec"]["template"]["metadata"]["labels"].items()
        ]
        assert not others, (name, others)


def test_disruption_budgets_cover_the_web_and_every_worker(base):
    deployments = _of(base, "Deployment")
    covered = {}
    for budget in _of(base, "PodDisruptionBudget").values():
        selector = budget["spec"]["selector"]["matchLabels"]
        (target,) = [
            deployment
            for deployment, obj in deployments.items()
            if selector.items() <= obj["spec"]["template"]["metadata"]["labels"].items()
        ]
        covered[target] = budget["spec"]
    assert covered["clypai-web"] == {**covered["clypai-web"], "minAvailable": 1}
    for worker in _worker_queues(base):
        assert covered[worker]["maxUnavailable"] == 1, worker


def test_the_sweep_loops_and_the_migrations_run_as_a_job(base):
    sweep = _of(base, "Deployment")["clypai-sweep"]
    assert _container(sweep)["command"] == ["python", "manage.py", "sweep", "--loop"]
    assert sweep["spec"]["replicas"] == 1
    (job,) = _of(base, "Job").values()
    assert _container(job)["command"] == ["python", "manage.py", "migrate", "--noinput"]
    assert job["spec"]["template"]["spec"]["restartPolicy"] == "Never"


def _settings_variables() -> set[str]:
    from tests.test_env_example import variables_read_by_settings

    return variables_read_by_settings((ROOT / "clypai" / "settings.py").read_text())


def test_pods_read_settings_from_the_configmap_and_the_secret(base):
    configmaps = _of(base, "ConfigMap")
    known = _settings_variables()
    assert set(configmaps["clypai-config"]["data"]) <= known
    assert SECRET_KEYS - {"REDIS_ADDRESS", "REDIS_PASSWORD"} <= known
    for kind in ("Deployment", "Job"):
        for name, obj in _of(base, kind).items():
            refs = _container(obj)["envFrom"]
            assert {"configMapRef": {"name": "clypai-config"}} in refs, name
            assert {"secretRef": {"name": SECRET}} in refs, name
    example = (OVERLAY / "secrets.env.example").read_text()
    assert set(re.findall(r"^([A-Z0-9_]+)=", example, re.M)) == SECRET_KEYS


# KEDA ------------------------------------------------------------------------------------


def test_keda_grows_each_worker_deployment_on_its_queues_redis_lists(base):
    deployments = _of(base, "Deployment")
    auth = _of(base, "TriggerAuthentication")
    scaled = _of(base, "ScaledObject")
    queues_of = _worker_queues(base)
    targets = {}
    for name, obj in scaled.items():
        assert obj["apiVersion"] == "keda.sh/v1alpha1"
        spec = obj["spec"]
        assert set(spec) <= {
            "scaleTargetRef",
            "minReplicaCount",
            "maxReplicaCount",
            "pollingInterval",
            "cooldownPeriod",
            "triggers",
            "advanced",
        }, name
        target = spec["scaleTargetRef"]["name"]
        assert target in deployments, name
        assert 0 <= spec["minReplicaCount"] <= spec["maxReplicaCount"], name
        lists = []
        for trigger in spec["triggers"]:
            assert trigger["type"] == "redis", name
            assert trigger["authenticationRef"]["name"] in auth, name
            metadata = trigger["metadata"]
            assert all(isinstance(value, str) for value in metadata.values()), metadata
            assert int(metadata["listLength"]) > 0
            assert metadata["databaseIndex"].isdigit()
            lists.append(metadata["listName"])
        assert sorted(lists) == sorted(f"rq:queue:{queue}" for queue in queues_of[target]), name
        targets[target] = spec
        # KEDA owns the replica count: the Deployment sets none to fight it.
        assert "replicas" not in deployments[target]["spec"], target
    assert set(targets) == set(queues_of)  # every worker Deployment grows on its queue
    # The GPU workers go to zero when there is nothing to transcribe; the others keep one.
    assert targets["clypai-worker-transcribe"]["minReplicaCount"] == 0
    for target, spec in targets.items():
        if target != "clypai-worker-transcribe":
            assert spec["minReplicaCount"] >= 1, target
    (redis,) = auth.values()
    refs = {ref["parameter"]: ref for ref in redis["spec"]["secretTargetRef"]}
    assert set(refs) == {"address", "password"}
    assert {ref["name"] for ref in refs.values()} == {SECRET}
    assert {ref["key"] for ref in refs.values()} <= SECRET_KEYS


def test_the_queue_list_keda_watches_is_the_one_rq_fills(settings):
    from clypai.queues import get_queue

    for queue in QUEUES:
        assert get_queue(queue).key == f"rq:queue:{queue}"


def test_the_container_commands_name_only_real_management_commands(base):
    commands = {
        _container(obj)["command"][2]
        for kind in ("Deployment", "Job")
        for obj in _of(base, kind).values()
        if _container(obj)["command"][:2] == ["python", "manage.py"]
    }
    assert commands == {"rqworker", "sweep", "migrate", "serve"}
    sweep = ROOT / "clips" / "management" / "commands" / "sweep.py"
    tree = ast.parse(sweep.read_text())
    assert "--loop" in ast.unparse(tree)
    serve = ROOT / "clypai" / "management" / "commands" / "serve.py"
    assert "--web-only" in ast.unparse(ast.parse(serve.read_text()))
