"""What the chart's tests share (no tests here): the chart rendered by `helm template`, the
default rendering applied to the sandbox, and the operator run as the chart's Deployment would
run it, under a token of its ServiceAccount."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from tests.e2e.conftest import apply, kubectl

from dpio_sandbox import helm, procs
from dpio_sandbox.sandbox import Sandbox

REPO = Path(__file__).resolve().parents[3]
CHART = REPO / "charts" / "dpio-operator"
NAMESPACE = "dpio-chart"


def render(*sets: str, namespace: str = NAMESPACE, release: str = "dpio") -> list[dict[str, Any]]:
    """The chart's objects as `helm template` renders them with ``--set`` each of ``sets``."""
    args = [arg for value in sets for arg in ("--set", value)]
    out = helm.run("template", release, str(CHART), "--namespace", namespace, *args).stdout
    return [doc for doc in yaml.safe_load_all(out) if doc]


def require_fresh_crd_copy() -> None:
    """Fail before applying a stale copy: it would take the shared API server's CRDs back to an
    old schema under the tests that follow. Refresh: cp crds/*.yaml charts/dpio-operator/files/crds/
    """
    for path in sorted((REPO / "crds").glob("*.yaml")):
        if (CHART / "files" / "crds" / path.name).read_text() != path.read_text():
            pytest.fail(f"charts/dpio-operator/files/crds/{path.name} differs from crds/")


def by_kind(objects: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [obj for obj in objects if obj["kind"] == kind]


def container(objects: list[dict[str, Any]]) -> dict[str, Any]:
    (deployment,) = by_kind(objects, "Deployment")
    (operator,) = deployment["spec"]["template"]["spec"]["containers"]
    return dict(operator)


def env_of(objects: list[dict[str, Any]]) -> dict[str, str]:
    return {e["name"]: e.get("value", "") for e in container(objects)["env"]}


def kubectl_run(box: Sandbox, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    """kubectl as the sandbox's admin, its exit status and stderr left to the caller."""
    return subprocess.run(
        [str(box.kubectl), f"--kubeconfig={box.kubeconfig}", *args],
        input=stdin,
        capture_output=True,
        text=True,
        check=False,
    )


def install_default(box: Sandbox) -> list[dict[str, Any]]:
    """The default rendering, applied into a namespace where PodSecurity enforces "restricted"
    (server-side apply: idempotent, so every module that needs the chart may call it)."""
    objects = render()
    require_fresh_crd_copy()
    labels = {f"pod-security.kubernetes.io/{mode}": "restricted" for mode in ("enforce", "warn")}
    namespace = {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": NAMESPACE, "labels": labels},
    }
    apply(box, namespace)
    manifest = json.dumps({"apiVersion": "v1", "kind": "List", "items": objects})
    proc = kubectl_run(
        box,
        "apply",
        "--server-side",
        "--force-conflicts",
        "--field-manager=helm-test",
        "-f",
        "-",
        stdin=manifest,
    )
    assert proc.returncode == 0, proc.stderr
    # The API server's PodSecurity admission judges the Deployment's pod template on apply.
    assert "would violate PodSecurity" not in proc.stderr
    return objects


def token_kubeconfig(box: Sandbox, account: dict[str, Any], path: Path) -> Path:
    """A kubeconfig whose only credential is a token of ``account`` (no client certificate)."""
    namespace = account["metadata"]["namespace"]
    token = kubectl(
        box, "create", "token", account["metadata"]["name"], "-n", namespace, "--duration=1h"
    ).strip()
    admin = json.loads(box.kubeconfig.read_text())
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "current-context": "chart",
        "clusters": admin["clusters"],
        "users": [{"name": "chart", "user": {"token": token}}],
        "contexts": [
            {
                "name": "chart",
                "context": {
                    "cluster": admin["clusters"][0]["name"],
                    "user": "chart",
                    "namespace": namespace,
                },
            }
        ],
    }
    path.write_text(json.dumps(config))
    return path


@contextlib.contextmanager
def run_operator(
    box: Sandbox,
    objects: list[dict[str, Any]],
    state: Path,
    env_overrides: dict[str, str] | None = None,
) -> Iterator[Path]:
    """`python -m dpio.handlers.main` with the Deployment's args and env, as its ServiceAccount;
    yields the log file. Only the ports change (free loopback ones), and `env_overrides` (e.g.
    paths the Deployment mounts)."""
    (account,) = by_kind(objects, "ServiceAccount")
    kubeconfig = token_kubeconfig(box, account, state / "kubeconfig")
    operator = container(objects)
    port = procs.free_port()
    args = [arg.replace("0.0.0.0:8080", f"127.0.0.1:{port}") for arg in operator["args"]]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KUBERNETES_", "DPIO_"))}
    env.update({e["name"]: e["value"] for e in operator["env"]}, KUBECONFIG=str(kubeconfig))
    if env["DPIO_METRICS_PORT"] != "0":
        env["DPIO_METRICS_PORT"] = str(procs.free_port())
    env.update(env_overrides or {})
    log = procs.log_file(state, "operator")
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "dpio.handlers.main", *args],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        procs.wait_for_url(state, "operator", proc.pid, f"http://127.0.0.1:{port}/healthz")
        yield log
    finally:
        procs.terminate(proc)
        print(log.read_text()[-4000:])
