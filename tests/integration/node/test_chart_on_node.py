"""The chart on a real node (issue 16, item 3): `make sandbox NODE=1`'s kubelet and containerd run
the operator image of `make image` as the chart's Deployment, in a namespace where Pod Security
"restricted" is enforced.

In order, on one sandbox of the module's own (one node per machine): `helm install` and the
Deployment Available; the examples reconciled from inside the Pod; `kubectl logs` JSON lines;
`helm upgrade` to two replicas with leader election, the leader Pod scaled away, the standby
holding the Lease and applying a change exactly once (the simulator's call counters); `helm
uninstall` leaving the CRDs and the objects in place (charts/dpio-operator/README.md); and
`make sandbox-down`'s cleanup leaving no process, mount, bridge or cgroup behind.

Skipped, with the reason, where the node cannot run (not root, containerd or podman missing:
sandbox/node/install-tools.sh and `make image` install them) or the image cannot be built.
"""

from __future__ import annotations

import dataclasses
import io
import json
import os
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest
from tests.e2e.conftest import apply, get, kubectl
from tests.integration.chart.helpers import CHART, require_fresh_crd_copy
from tests.waiting import eventually

from dpio_sandbox import demo, helm, image, manifests, nodehost, procs, vcsim
from dpio_sandbox import node as node_mod
from dpio_sandbox import sandbox as sandbox_mod
from dpio_sandbox.sandbox import Sandbox

pytestmark = [pytest.mark.sandbox, pytest.mark.timeout(1800)]  # first run: kubelet build

RELEASE, NAMESPACE = "dpio-operator", "dpio-node"  # fullname: the release's name
DEPLOYMENT = RELEASE
LEASE = f"{RELEASE}-leader"
CRDS = ("hostpassthroughpolicies.dpio.io", "vmdeviceassignments.dpio.io")
WRITES = vcsim.WRITE_METHODS
T = TypeVar("T")


@dataclass(frozen=True)
class Cluster:
    box: Sandbox  # its vcsim: the module's own, at the node's address
    node: node_mod.Node
    helm_env: dict[str, str]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    reason = node_mod.unavailable() or image.unavailable()
    if reason is not None:
        pytest.skip(f"no node on this machine: {reason}")
    try:
        built = image.build()  # podman's layer cache: seconds after `make image`
    except image.ImageUnavailableError as err:
        pytest.skip(f"the image cannot be built on this machine: {err}")
    state = tmp_path_factory.mktemp("node")
    started = time.monotonic()
    try:
        box = sandbox_mod.up(state, node=True)
    except (node_mod.NodeUnavailableError, procs.ProcessError) as err:
        sandbox_mod.down(state)
        pytest.skip(f"the node did not start on this machine: {err}")
    assert box.node is not None
    print(f"sandbox with a node up in {time.monotonic() - started:.0f}s; image {built.image}")
    assert box.node.has_operator_image, box.node.images
    # The examples reboot hosts: a simulator of the module's own, quick to reboot, which the
    # Pod reaches at the node's address.
    sim = vcsim.start(state, name="vcsim-node", reboot_delay="300ms", address=box.node.ip)
    env = {**os.environ, "KUBECONFIG": str(box.kubeconfig)}
    env.update({f"HELM_{kind}_HOME": str(state / "helm" / kind) for kind in ("CACHE", "CONFIG")})
    env["HELM_DATA_HOME"] = str(state / "helm" / "DATA")
    try:
        yield Cluster(dataclasses.replace(box, vcsim=sim), box.node, env)
    finally:
        _print_logs(box)
        sandbox_mod.down(state)  # a no-op after test_sandbox_down_leaves_nothing_behind
        if not nodehost.mounts_under(state):  # the images' ~400 MB, kept by pytest otherwise
            shutil.rmtree(state / "node" / "containerd", ignore_errors=True)


def test_helm_install_into_a_restricted_namespace_becomes_available(cluster: Cluster) -> None:
    box = cluster.box
    require_fresh_crd_copy()
    labels = {f"pod-security.kubernetes.io/{m}": "restricted" for m in ("enforce", "warn")}
    apply(box, {"apiVersion": "v1", "kind": "Namespace",
                "metadata": {"name": NAMESPACE, "labels": labels}})  # fmt: skip
    apply(box, {
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "vcenter", "namespace": NAMESPACE},
        "stringData": {"server": box.vcsim.sdk_url, "username": box.vcsim.username,
                       "password": box.vcsim.password,
                       "caBundle": Path(box.vcsim.ca_file).read_text()},
    })  # fmt: skip
    out = _helm(cluster, "install", RELEASE, str(CHART), "-n", NAMESPACE)
    assert "would violate PodSecurity" not in out
    _wait_available(box, replicas=1)
    (pod,) = _pods(box)
    assert pod["spec"]["nodeName"] == cluster.node.name
    (container,) = pod["status"]["containerStatuses"]
    assert container["image"] == image.IMAGE
    assert container["ready"] is True


def test_the_examples_reconcile_from_inside_the_pod(cluster: Cluster) -> None:
    box = cluster.box
    demo.apply_examples(box)
    out = io.StringIO()
    settled = demo.watch(box, seconds=300, once=True, out=out)
    assert settled, out.getvalue()
    assert _condition(get(box, "hpp", "gpu-cluster"), "Ready") == ("True", "Reconciled")
    for namespace, name in [("ml-team", "trainer-t4"), ("ml-team", "batch-a100"),
                            ("net-team", "vmfex-gen2")]:  # fmt: skip
        body = get(box, "vmda", name, namespace)
        assert _condition(body, "Ready") == ("True", "Reconciled"), body.get("status")
    assert _condition(get(box, "vmda", "bios-a100", "ml-team"), "Ready") == (
        "False",
        "FirmwareNotEFI",
    )
    # No operator runs anywhere else: the Pod's own log records the vCenter changes.
    changes = [r for r in _log_records(box) if r["logger"].startswith("dpio.vsphere.")]
    assert changes


def test_kubectl_logs_are_json_lines(cluster: Cluster) -> None:
    records = _log_records(cluster.box)
    assert records
    assert all({"time", "level", "message"} <= set(r) for r in records)


def test_two_replicas_with_leader_election_the_other_takes_over(cluster: Cluster) -> None:
    box, sim = cluster.box, cluster.box.vcsim
    _helm(
        cluster, "upgrade", RELEASE, str(CHART), "-n", NAMESPACE,
        "--set", "replicaCount=2", "--set", "leaderElection.enabled=true",
    )  # fmt: skip
    _wait_available(box, replicas=2)
    leader = eventually(lambda: _holder_pod(box), timeout=60, what=f"lease/{LEASE} held")
    names = {p["metadata"]["name"] for p in _pods(box)}
    assert leader in names, (leader, names)
    (other,) = names - {leader}
    # Converged: neither replica writes to vCenter.
    _reset_counters(sim)
    time.sleep(5)
    assert _writes(sim) == {}

    # The leader goes away and nothing replaces it, so the Lease can only pass to the standby
    # that was waiting (a plain `kubectl delete pod` lets the Deployment's replacement race
    # it). Scaling down removes the Pod with the lowest deletion cost: the leader (SIGTERM).
    kubectl(box, "annotate", "pod", leader, "-n", NAMESPACE,
            "controller.kubernetes.io/pod-deletion-cost=-1000")  # fmt: skip
    kubectl(box, "scale", f"deployment/{DEPLOYMENT}", "-n", NAMESPACE, "--replicas=1")
    holder = eventually(
        lambda: (h := _holder_pod(box)) != leader and h, timeout=60, what="a new Lease holder"
    )
    assert holder == other
    assert {p["metadata"]["name"] for p in _pods(box)} <= {other}
    # A change only the new leader can apply, applied exactly once.
    apply(box, manifests.policy("after-takeover", hosts=["esx-gpu-02.lab.local"],
                                devices=[{"address": "0000:5e:00.0"}]))  # fmt: skip
    eventually(
        lambda: _condition_or_none(get(box, "hpp", "after-takeover"), "Ready") == "True",
        timeout=120,
        what="hpp/after-takeover Ready, applied by the new leader",
    )
    time.sleep(5)  # long enough for a second write, if one were coming
    writes = _writes(sim)
    # Passthrough enabled once; the host's reboot (esx-gpu-02 is in gpu-cluster, whose reboot
    # policy is Rolling: maintenance mode, reboot, exit) once too, if it needed one.
    assert writes.get("UpdatePassthruConfig") == 1, writes
    assert all(n == 1 for n in writes.values()), writes
    _wait_available(box, replicas=1)  # the standby, now the leader, alone


def test_helm_uninstall_keeps_the_crds_and_the_objects(cluster: Cluster) -> None:
    box = cluster.box
    out = _helm(cluster, "uninstall", RELEASE, "-n", NAMESPACE, "--wait")
    assert "kept due to the resource policy" in out
    for crd in CRDS:
        get(box, "crd", crd)
    assert get(box, "hpp", "gpu-cluster")["metadata"]["name"] == "gpu-cluster"
    assert get(box, "vmda", "trainer-t4", "ml-team")["metadata"]["name"] == "trainer-t4"
    assert "deployment" not in kubectl(box, "get", "deployments", "-n", NAMESPACE, "-o", "name")
    eventually(lambda: not _pods(box), timeout=90, what="the operator's Pods gone")


def test_sandbox_down_leaves_nothing_behind(cluster: Cluster) -> None:
    state = cluster.box.state_dir
    _print_logs(cluster.box)
    sandbox_mod.down(state)
    assert nodehost.mounts_under(state) == []
    assert nodehost.bridge_owner() is None
    assert nodehost.pod_cgroup_pids() == set()
    assert not any(Path("/sys/fs/cgroup").glob("*/kubepods")), "kubepods cgroups left"
    # What the kubelet and libcni keep at fixed paths, whatever the state directory.
    assert not Path("/var/lib/kubelet/device-plugins/kubelet.sock").exists()
    assert not list(Path("/var/lib/cni/results").glob(f"{nodehost.NETWORK}-*"))
    for name in (*nodehost.PROCESSES, "kube-apiserver", "etcd", "vcsim-node"):
        assert procs.running(state, name) is None, name
    assert _processes_naming(state) == [], "processes naming the state directory are left"


def _processes_naming(directory: Path) -> list[str]:
    """Command lines that mention ``directory`` (containerd's shims name its socket)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            try:
                argv = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue
            if str(directory) in argv:
                found.append(f"{entry.name}: {argv[:120]}")
    return found


def _helm(cluster: Cluster, *args: str) -> str:
    """helm with the node's values (the imported image, the API server's address)."""
    values = ["-f", str(cluster.node.values)] if args[0] in {"install", "upgrade"} else []
    proc = helm.run(*args, *values, env=cluster.helm_env)
    return proc.stdout + proc.stderr


def _pods(box: Sandbox) -> list[dict[str, Any]]:
    listed = kubectl(box, "get", "pods", "-n", NAMESPACE, "-l",
                     f"app.kubernetes.io/instance={RELEASE}", "-o", "json")  # fmt: skip
    return [p for p in json.loads(listed)["items"] if not p["metadata"].get("deletionTimestamp")]


def _wait_available(box: Sandbox, replicas: int) -> None:
    kubectl(box, "rollout", "status", f"deployment/{DEPLOYMENT}", "-n", NAMESPACE,
            "--timeout=180s")  # fmt: skip
    kubectl(box, "wait", "--for=condition=Available", f"deployment/{DEPLOYMENT}",
            "-n", NAMESPACE, "--timeout=60s")  # fmt: skip
    status = get(box, "deployment", DEPLOYMENT, NAMESPACE)["status"]
    assert status.get("availableReplicas") == replicas, status


def _holder_pod(box: Sandbox) -> str:
    """The pod whose replica holds the Lease (identity: pod name + "_" + a random suffix)."""
    out = kubectl(box, "get", "lease", LEASE, "-n", NAMESPACE, "-o", "json", "--ignore-not-found")
    holder = str(json.loads(out)["spec"].get("holderIdentity") or "") if out.strip() else ""
    return holder.rsplit("_", 1)[0]


def _log_records(box: Sandbox) -> list[dict[str, Any]]:
    """`kubectl logs` of the Deployment: every line must be JSON."""
    text = kubectl(box, "logs", f"deployment/{DEPLOYMENT}", "-n", NAMESPACE, "--tail=-1")
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def _writes(sim: vcsim.Simulator) -> dict[str, int]:
    answer: Any = sim.admin("GET", "/counters")
    return {m: n for m, n in answer["counts"].items() if m in WRITES and n}


def _reset_counters(sim: vcsim.Simulator) -> None:
    sim.admin("POST", "/counters/reset")


def _condition(body: dict[str, Any], type_: str) -> tuple[str, str]:
    (found,) = [c for c in body["status"]["conditions"] if c["type"] == type_]
    return found["status"], found["reason"]


def _condition_or_none(body: dict[str, Any], type_: str) -> str | None:
    found = [c for c in body.get("status", {}).get("conditions", []) if c["type"] == type_]
    fresh = body.get("status", {}).get("observedGeneration") == body["metadata"]["generation"]
    return found[0]["status"] if found and fresh else None


def _print_logs(box: Sandbox) -> None:
    """The node's own logs' tails, for a failure's reader."""
    for name in ("kubelet", "containerd"):
        print(f"--- {procs.log_file(box.state_dir, name)}\n{procs.log_tail(box.state_dir, name)}")
