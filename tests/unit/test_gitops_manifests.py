"""The GitOps examples (docs/gitops.md) hold together: Flux applies policies before the
assignments that use them and waits on both; Argo CD's sync waves put every policy before its
assignments; every path they name exists."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from dpio_sandbox import controlplane

ROOT = Path(__file__).resolve().parents[2]
FLUX = ROOT / "deploy/flux/dpio.yaml"
APPLICATION = ROOT / "deploy/argocd/application.yaml"
WAVE = "argocd.argoproj.io/sync-wave"


def documents(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def flux() -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in documents(FLUX)}


def kustomized(flux_path: str) -> list[dict[str, Any]]:
    """The objects a Flux Kustomization's path holds: its kustomization.yaml's resources."""
    directory = ROOT / flux_path
    config = yaml.safe_load((directory / "kustomization.yaml").read_text())
    objects = []
    for resource in config["resources"]:
        file = (directory / resource).resolve()
        assert file.is_file(), f"{flux_path}: {resource} does not exist"
        assert ROOT in file.parents, f"{flux_path}: {resource} is outside the repository"
        objects += documents(file)
    return objects


def test_flux_has_one_source_and_two_kustomizations_on_it() -> None:
    objects = flux()
    assert {(o["kind"], name) for name, o in objects.items()} == {
        ("GitRepository", "dpio-config"),
        ("Kustomization", "dpio-policies"),
        ("Kustomization", "dpio-assignments"),
    }
    for name in ("dpio-policies", "dpio-assignments"):
        spec = objects[name]["spec"]
        assert spec["sourceRef"] == {"kind": "GitRepository", "name": "dpio-config"}
        assert spec["wait"] is True, f"{name}: kstatus health checks need wait: true"
        assert spec["timeout"], name
        assert (
            objects[name]["metadata"]["namespace"]
            == objects["dpio-config"]["metadata"]["namespace"]
        )


def test_flux_applies_assignments_only_after_the_policies_they_use() -> None:
    objects = flux()
    assert objects["dpio-assignments"]["spec"]["dependsOn"] == [{"name": "dpio-policies"}]
    assert "dependsOn" not in objects["dpio-policies"]["spec"]
    policies = kustomized(objects["dpio-policies"]["spec"]["path"])
    assignments = kustomized(objects["dpio-assignments"]["spec"]["path"])
    assert {o["kind"] for o in policies} == {"Namespace", "HostPassthroughPolicy"}
    assert {o["kind"] for o in assignments} == {"VMDeviceAssignment"}
    names = {o["metadata"]["name"] for o in policies if o["kind"] == "HostPassthroughPolicy"}
    namespaces = {o["metadata"]["name"] for o in policies if o["kind"] == "Namespace"}
    for a in assignments:
        assert a["spec"]["policyRef"]["name"] in names, a["metadata"]["name"]
        assert a["metadata"]["namespace"] in namespaces, a["metadata"]["name"]


def test_flux_leaves_out_what_is_refused_on_purpose() -> None:
    """An object that ends Stalled (kstatus Failed) would fail its Kustomization for good."""
    objects = flux()
    files = {
        Path(r).name
        for name in ("dpio-policies", "dpio-assignments")
        for r in yaml.safe_load(
            (ROOT / objects[name]["spec"]["path"] / "kustomization.yaml").read_text()
        )["resources"]
    }
    assert "60-vmda-bios-refused.yaml" not in files
    assert "20-hpp-compute-manual.yaml" not in files


def examples() -> list[dict[str, Any]]:
    path = ROOT / yaml.safe_load(APPLICATION.read_text())["spec"]["source"]["path"]
    return [d for f in sorted(path.glob("*.yaml")) for d in documents(f)]


def wave(obj: dict[str, Any]) -> int:
    return int((obj["metadata"].get("annotations") or {}).get(WAVE, "0"))


def test_the_argo_cd_application_syncs_examples() -> None:
    app = yaml.safe_load(APPLICATION.read_text())
    assert app["kind"] == "Application"
    assert (ROOT / app["spec"]["source"]["path"]).is_dir()
    assert app["spec"]["source"]["path"] == "examples"
    assert examples(), "no manifests under the Application's path"


@pytest.mark.parametrize(
    "assignment",
    [o for o in examples() if o["kind"] == "VMDeviceAssignment"],
    ids=lambda o: o["metadata"]["name"],
)
def test_argo_cd_syncs_each_assignment_after_its_policy_and_namespace(
    assignment: dict[str, Any],
) -> None:
    objects = examples()
    policy = next(
        o
        for o in objects
        if o["kind"] == "HostPassthroughPolicy"
        and o["metadata"]["name"] == assignment["spec"]["policyRef"]["name"]
    )
    namespace = next(
        o
        for o in objects
        if o["kind"] == "Namespace" and o["metadata"]["name"] == assignment["metadata"]["namespace"]
    )
    assert wave(policy) < wave(assignment)
    assert wave(namespace) <= wave(assignment)


def test_what_ends_stalled_on_the_sandbox_syncs_last() -> None:
    """A Degraded object fails its wave (gitops-engine's sync context): nothing may come after
    compute-manual (PassthroughUnsupported) and bios-a100 (FirmwareNotEFI)."""
    objects = examples()
    last = max(wave(o) for o in objects)
    stalled = {"compute-manual", "bios-a100"}
    assert {o["metadata"]["name"] for o in objects if wave(o) == last} == stalled


@pytest.mark.sandbox
@pytest.mark.parametrize("name", ["dpio-policies", "dpio-assignments"])
def test_kustomize_builds_each_flux_path_as_flux_does(name: str) -> None:
    """kubectl's own kustomize, with kustomize-controller's load restriction (none: Flux bounds
    the build by the repository instead), builds what the path's resources hold."""
    path = flux()[name]["spec"]["path"]
    k8s_bin, _ = controlplane.binaries()
    built = subprocess.run(
        [str(k8s_bin / "kubectl"), "kustomize", "--load-restrictor", "LoadRestrictionsNone",
         str(ROOT / path)],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    assert sorted(map(identity, yaml.safe_load_all(built))) == sorted(
        map(identity, kustomized(path))
    )


def identity(obj: dict[str, Any]) -> tuple[str, str]:
    return obj["kind"], obj["metadata"]["name"]
