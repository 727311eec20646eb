"""`make sandbox NODE=1`'s pure parts: containerd's and the kubelet's configuration, the CNI
network, the chart's values for the node. The node itself runs in
tests/integration/node/test_chart_on_node.py."""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path

from dpio_sandbox import certs, containerd, kubelet, node, nodehost
from dpio_sandbox.controlplane import ControlPlane

ROOT = Path(__file__).resolve().parents[2]


def test_containerd_keeps_to_the_state_directory_with_the_quirks_that_work(tmp_path: Path) -> None:
    config = tomllib.loads(containerd.config(tmp_path, "localhost/dpio-pause:1"))
    cri = config["plugins"]["io.containerd.grpc.v1.cri"]

    assert cri["restrict_oom_score_adj"] is True
    assert cri["netns_mounts_under_state_dir"] is True
    assert cri["sandbox_image"] == "localhost/dpio-pause:1"
    assert cri["stream_server_port"] == "0"  # not the fixed 10010
    runc = cri["containerd"]["runtimes"]["runc"]
    assert runc["options"]["SystemdCgroup"] is False
    assert cri["cni"]["conf_dir"] == str(containerd.cni_dir(tmp_path))
    paths = [config["root"], config["state"], config["grpc"]["address"],
             config["ttrpc"]["address"], runc["options"]["Root"],
             config["plugins"]["io.containerd.internal.v1.opt"]["path"]]  # fmt: skip
    assert all(p.startswith(f"{tmp_path}/node/") for p in paths), paths


def test_the_bridge_network_is_the_nodes_and_keeps_its_leases_in_the_state_directory(
    tmp_path: Path,
) -> None:
    conflist = json.loads(containerd.cni_config(tmp_path))
    bridge, loopback = conflist["plugins"]

    assert conflist["name"] == nodehost.NETWORK
    assert (bridge["type"], bridge["bridge"], loopback["type"]) == ("bridge", "dpio0", "loopback")
    assert bridge["ipMasq"] is False
    assert bridge["ipam"]["ranges"] == [[{"subnet": nodehost.SUBNET, "gateway": nodehost.NODE_IP}]]
    assert bridge["ipam"]["dataDir"].startswith(f"{tmp_path}/")


def test_the_kubelet_uses_cgroupfs_trusts_the_sandbox_ca_and_never_collects_images(
    tmp_path: Path,
) -> None:
    serving = certs.KeyPair(tmp_path / "k.crt", tmp_path / "k.key")
    config = kubelet.kubelet_config(
        tmp_path, serving, tmp_path / "ca.crt", node_ip="10.213.77.1", port=1, healthz=2
    )

    assert (config["cgroupDriver"], config["failSwapOn"], config["failCgroupV1"]) == (
        "cgroupfs", False, False,
    )  # fmt: skip
    assert config["authentication"]["anonymous"] == {"enabled": False}
    assert config["authentication"]["x509"] == {"clientCAFile": str(tmp_path / "ca.crt")}
    assert config["authorization"] == {"mode": "Webhook"}
    assert config["readOnlyPort"] == 0
    assert config["imageGCHighThresholdPercent"] == 100  # imported images can't be pulled again
    assert config["containerRuntimeEndpoint"] == f"unix://{containerd.socket(tmp_path)}"
    assert config["podLogsDir"].startswith(f"{tmp_path}/")


def test_the_charts_values_name_the_imported_image_and_the_api_server_at_the_node(
    tmp_path: Path,
) -> None:
    plane = ControlPlane(tmp_path, tmp_path / "kubeconfig", "https://127.0.0.1:6443",
                         tmp_path / "ca.crt", tmp_path / "kubectl", {},
                         {"kube-apiserver": 6443}, node.NODE_IP)  # fmt: skip

    values = node.chart_values(plane, "localhost/dpio-operator:0.1.0")

    assert values["image"] == {
        "repository": "localhost/dpio-operator", "tag": "0.1.0", "pullPolicy": "Never",
    }  # fmt: skip
    assert values["operator"] == {"extraEnv": [
        {"name": "KUBERNETES_SERVICE_HOST", "value": "10.213.77.1"},
        {"name": "KUBERNETES_SERVICE_PORT", "value": "6443"},
    ]}  # fmt: skip


def test_mount_points_are_read_unescaped() -> None:
    assert nodehost._unescape(r"/tmp/a\040b/c\134d") == "/tmp/a b/c\\d"


def test_the_kubelet_is_built_from_the_control_planes_kubernetes_release() -> None:
    """sandbox/node and sandbox/controlplane pin k8s.io/kubernetes and its staging modules to
    the same versions: a kubelet newer than its API server is not supported."""

    def pins(module: str) -> set[str]:
        text = (ROOT / "sandbox" / module / "go.mod").read_text()
        return set(re.findall(r"^\s*(k8s\.io/\S+ => k8s\.io/\S+ v\S+|k8s\.io/kubernetes v\S+)",
                              text, re.MULTILINE))  # fmt: skip

    node_pins, plane_pins = pins("node"), pins("controlplane")
    assert any(p.startswith("k8s.io/kubernetes v") for p in node_pins)
    shared = {p.split(" ")[0] for p in node_pins} & {p.split(" ")[0] for p in plane_pins}
    assert {p for p in node_pins if p.split(" ")[0] in shared} == {
        p for p in plane_pins if p.split(" ")[0] in shared
    }
