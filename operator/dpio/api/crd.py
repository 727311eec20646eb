"""CustomResourceDefinitions generated from the API models.

    python -m dpio.api.crd --out crds/

writes one file per kind; the output is deterministic, so a test can check the committed CRDs
are current. Everything the API server can enforce at admission is in the schema (patterns,
enums, list sizes, CEL one-of rules); what only vSphere can judge is left to conditions.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel

from dpio.api.assignment import VMDeviceAssignmentSpec, VMDeviceAssignmentStatus
from dpio.api.common import GROUP, VERSION
from dpio.api.policy import HostPassthroughPolicySpec, HostPassthroughPolicyStatus
from dpio.api.schema import JsonSchema, structural_schema

Manifest = dict[str, Any]
CATEGORY = "dpio"


def _column(name: str, json_path: str, type_: str = "string", **extra: Any) -> dict[str, Any]:
    return {"name": name, "type": type_, "jsonPath": json_path, **extra}


def _condition(field: str) -> str:
    return f'.status.conditions[?(@.type=="Ready")].{field}'


_READY_AGE = (
    _column("Ready", _condition("status")),
    _column("Reason", _condition("reason")),
    _column("Age", ".metadata.creationTimestamp", "date"),
)


@dataclass(frozen=True)
class Kind:
    """What a CRD says about one kind besides its schema."""

    kind: str
    plural: str
    short_name: str
    scope: str
    description: str
    spec: type[BaseModel]
    status: type[BaseModel]
    columns: tuple[dict[str, Any], ...]
    selectable_fields: tuple[str, ...] = ()

    @property
    def crd_name(self) -> str:
        return f"{self.plural}.{GROUP}"


HOST_PASSTHROUGH_POLICY = Kind(
    kind="HostPassthroughPolicy",
    plural="hostpassthroughpolicies",
    short_name="hpp",
    scope="Cluster",
    description="HostPassthroughPolicy says which PCI devices of which ESXi hosts are enabled "
    "for DirectPath I/O passthrough, and which namespaces may attach them to VMs.",
    spec=HostPassthroughPolicySpec,
    status=HostPassthroughPolicyStatus,
    columns=(
        _column("Hosts", ".status.summary.hosts", "integer"),
        _column("Devices", ".status.summary.devices", "integer"),
        _column("Active", ".status.summary.active", "integer"),
        _column("Pending Reboot", ".status.summary.pendingReboot", "integer"),
        *_READY_AGE,
    ),
)

VM_DEVICE_ASSIGNMENT = Kind(
    kind="VMDeviceAssignment",
    plural="vmdeviceassignments",
    short_name="vmda",
    scope="Namespaced",
    description="VMDeviceAssignment says which passthrough devices (static or Dynamic "
    "DirectPath, DirectPath Gen2 network adapters) one vSphere VM should have.",
    spec=VMDeviceAssignmentSpec,
    status=VMDeviceAssignmentStatus,
    columns=(
        _column("VM", ".spec.vm.name"),
        _column("UUID", ".spec.vm.instanceUUID", priority=1),
        _column("Host", ".status.vm.host"),
        _column("Devices", ".status.attached", description="Attached/desired devices."),
        _column("Power", ".status.vm.powerState"),
        *_READY_AGE,
        _column("Policy", ".spec.policyRef.name", priority=1),
    ),
    # Lets the operator list a policy's assignments with a field selector (GA in 1.32).
    selectable_fields=(".spec.policyRef.name",),
)

KINDS = (HOST_PASSTHROUGH_POLICY, VM_DEVICE_ASSIGNMENT)


def _object_schema(kind: Kind) -> JsonSchema:
    return {
        "type": "object",
        "description": kind.description,
        "properties": {
            "apiVersion": {"type": "string", "description": "APIVersion of this object."},
            "kind": {"type": "string", "description": "Kind of this object."},
            "metadata": {"type": "object"},
            "spec": structural_schema(kind.spec),
            "status": structural_schema(kind.status),
        },
        "required": ["spec"],
    }


def crd(kind: Kind) -> Manifest:
    """The apiextensions.k8s.io/v1 CustomResourceDefinition of one kind."""
    version: dict[str, Any] = {
        "name": VERSION,
        "served": True,
        "storage": True,
        "schema": {"openAPIV3Schema": _object_schema(kind)},
        "subresources": {"status": {}},
        "additionalPrinterColumns": list(kind.columns),
    }
    if kind.selectable_fields:
        version["selectableFields"] = [{"jsonPath": path} for path in kind.selectable_fields]
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": kind.crd_name},
        "spec": {
            "group": GROUP,
            "scope": kind.scope,
            "names": {
                "kind": kind.kind,
                "listKind": f"{kind.kind}List",
                "plural": kind.plural,
                "singular": kind.kind.lower(),
                "shortNames": [kind.short_name],
                "categories": [CATEGORY],
            },
            "versions": [version],
        },
    }


def render(manifest: Manifest) -> str:
    """YAML text of a manifest; stable for a given model, so diffs show real API changes."""
    header = "# Generated by `python -m dpio.api.crd --out crds/` from dpio.api; do not edit.\n"
    return header + yaml.safe_dump(manifest, sort_keys=False, width=100, allow_unicode=True)


def files() -> dict[str, str]:
    """File name -> YAML text of every CRD."""
    return {f"{GROUP}_{kind.plural}.yaml": render(crd(kind)) for kind in KINDS}


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Write the dpio.io CRDs.")
    parser.add_argument("--out", type=Path, required=True, help="directory to write into")
    args = parser.parse_args(argv)
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    for name, text in files().items():
        (out / name).write_text(text)
        print(f"wrote {out / name}")


if __name__ == "__main__":
    main()
