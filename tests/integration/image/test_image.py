"""The operator image, built from the Dockerfile with podman (`make image`), run the way the
chart's Deployment runs it: its arguments and environment, its securityContext (UID 65532,
read-only root, all capabilities dropped, no privilege escalation, /tmp its only writable path),
under a token of the chart's ServiceAccount. The examples converge, the logs are JSON.

Skipped, with the reason, where podman is missing or does not work (`make image` installs it
from Debian's packages; CI runs `make image` before `make test`). The build reuses podman's
layer cache: seconds after `make image`, a few minutes from cold.
"""

from __future__ import annotations

import dataclasses
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from tests.e2e.conftest import apply, get, kubectl, purge_dpio_objects
from tests.integration.chart.helpers import NAMESPACE, by_kind, install_default, token_kubeconfig

from dpio_sandbox import demo, image, imagerun, podman, vcsim
from dpio_sandbox.sandbox import Sandbox

pytestmark = pytest.mark.sandbox


@pytest.fixture(scope="module")
def built() -> image.Built:
    reason = image.unavailable()
    if reason is not None:
        pytest.skip(f"the image cannot be built on this machine: {reason}")
    try:
        built = image.build()
    except image.ImageUnavailableError as err:  # no base image, or podman cannot start one
        pytest.skip(f"the image cannot be built on this machine: {err}")
    megabytes = built.size / 1e6
    print(f"{built.image}: {megabytes:.0f} MB on {built.base}, built in {built.seconds:.0f}s")
    return built


@dataclass(frozen=True)
class Run:
    box: Sandbox
    name: str  # the running container
    settled: bool
    tables: str
    objects: list[dict[str, Any]]


@pytest.fixture(scope="module")
def run(
    built: image.Built, sandbox: Sandbox, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Run]:
    """The chart's objects applied, the image running as its Deployment, the examples applied
    and watched until settled (a simulator of its own: the examples reboot hosts)."""
    state = tmp_path_factory.mktemp("image")
    sim = vcsim.start(state, name="vcsim-image", reboot_delay="300ms")
    box = dataclasses.replace(sandbox, vcsim=sim, state_dir=state)
    purge_dpio_objects(sandbox)
    objects = install_default(box)
    apply(box, {
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "vcenter", "namespace": NAMESPACE},
        "stringData": {"server": sim.sdk_url, "username": sim.username,
                       "password": sim.password, "caBundle": Path(sim.ca_file).read_text()},
    })  # fmt: skip
    (account,) = by_kind(objects, "ServiceAccount")
    kubeconfig = token_kubeconfig(box, account, state / "kubeconfig")
    spec = imagerun.container(objects)
    log = state / "operator.log"
    try:
        with imagerun.running(built.image, spec, kubeconfig, log) as name:
            demo.apply_examples(box)
            out = io.StringIO()
            settled = demo.watch(box, seconds=300, once=True, out=out)
            yield Run(box, name, settled, out.getvalue(), objects)
    finally:
        if log.exists():
            print(log.read_text()[-4000:])
        purge_dpio_objects(sandbox)  # no operator left to take the finalizers off
        kubectl(sandbox, "delete", "secret", "vcenter", "-n", NAMESPACE, "--ignore-not-found")
        vcsim.stop(state, "vcsim-image")


def _condition(body: dict[str, Any], type_: str) -> tuple[str, str]:
    (found,) = [c for c in body["status"]["conditions"] if c["type"] == type_]
    return found["status"], found["reason"]


def _status_of_pid1(name: str) -> dict[str, str]:
    text = podman.run("exec", name, "cat", "/proc/1/status")
    return dict(line.split(":\t", 1) for line in text.splitlines() if ":\t" in line)


def test_the_examples_converge_under_the_image(run: Run) -> None:
    assert run.settled, run.tables
    assert _condition(get(run.box, "hpp", "gpu-cluster"), "Ready") == ("True", "Reconciled")
    for namespace, name in [
        ("ml-team", "trainer-t4"),
        ("ml-team", "batch-a100"),
        ("net-team", "vmfex-gen2"),
    ]:
        body = get(run.box, "vmda", name, namespace)
        assert _condition(body, "Ready") == ("True", "Reconciled"), body.get("status")
    refused = get(run.box, "vmda", "bios-a100", "ml-team")
    assert _condition(refused, "Ready") == ("False", "FirmwareNotEFI")


def test_the_operator_process_runs_with_the_charts_security_settings(run: Run) -> None:
    (deployment,) = by_kind(run.objects, "Deployment")
    expected = image.Security.from_deployment(deployment)
    assert (expected.user, expected.read_only, expected.drop_all) == (65532, True, True)
    assert expected.no_new_privileges
    assert expected.tmpfs == ("/tmp",)

    status = _status_of_pid1(run.name)  # PID 1 is the operator (exec form entry point)
    assert status["Name"].strip().startswith("python")
    assert status["Uid"].split()[:2] == ["65532", "65532"]
    assert status["Gid"].split()[:2] == ["65532", "65532"]
    assert int(status["CapEff"], 16) == 0
    assert int(status["CapBnd"], 16) == 0
    assert status["NoNewPrivs"].strip() == "1"
    assert status["Seccomp"].strip() == "2"  # filter mode: podman's default profile


def test_the_root_filesystem_is_read_only_and_only_tmp_is_writable(run: Run) -> None:
    probe = "touch /app/x 2>/dev/null && echo app; touch /tmp/x && echo tmp; rm -f /tmp/x"
    assert podman.run("exec", run.name, "sh", "-c", probe).split() == ["tmp"]
    inspected = imagerun.state(run.name)
    assert inspected["HostConfig"]["ReadonlyRootfs"] is True


def test_the_operator_logs_are_json_lines(run: Run) -> None:
    lines = [line for line in imagerun.logs(run.name).splitlines() if line.strip()]
    assert lines
    records = [json.loads(line) for line in lines]  # fails on the first line that is not JSON
    assert all({"time", "level", "message"} <= set(r) for r in records)
    # Kubernetes style: what a line is about as fields (the host or VM changed), not in the text.
    changes = [r for r in records if r["logger"].startswith("dpio.vsphere.")]
    assert changes, records[-5:]
    assert all(r.get("host") or r.get("vm") or r.get("server") for r in changes), changes


def test_the_machines_ca_bundle_stays_out_of_the_image(built: image.Built) -> None:
    """The build mounts the machine's CA bundle for its RUN steps only: the image keeps the
    base's own bundle, and no build argument reaches its environment."""
    path = image.BUILD_CA

    def digest(ref: str) -> str:
        return podman.run("run", "--rm", "--network=none", "--entrypoint=sha256sum", ref, path)

    assert digest(built.image).split()[0] == digest(built.base).split()[0]
    (config,) = json.loads(podman.run("image", "inspect", built.image))
    env = " ".join(config["Config"]["Env"])
    assert "SSL_CERT_FILE" not in env
    assert "PIP_CERT" not in env
    assert "PIP_INDEX_URL" not in env


def test_the_final_image_holds_no_uv(built: image.Built) -> None:
    found = podman.run(
        "run", "--rm", "--network=none", "--entrypoint=sh", built.image, "-c",
        "command -v uv || find / -xdev -name 'uv' -type f 2>/dev/null || true",
    )  # fmt: skip
    assert found.strip() == ""
