"""`dpio plan`: the operator's planner on manifests, shown for review, with terraform-style exit
codes. vCenter is replaced by a fixed inventory; everything else is the real command."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from tests.unit.planner.builders import GPU, GPU_AUDIO, NIC, X710, dev, host, info

from dpio.api.policy import RebootPolicy
from dpio.cli import commands
from dpio.cli.main import build_parser
from dpio.cli.plan import PolicyReport, render_text, summary
from dpio.planner import PolicyPlan, Problem
from dpio.planner.observed import ObservedInventory
from dpio.vsphere.credentials import Credentials

A100_LABELLED = {"vendorID": "10de", "deviceID": "20b5", "hardwareLabel": "a"}
ENV = {"VSPHERE_URL": "https://vc.lab/sdk", "VSPHERE_USER": "u", "VSPHERE_PASSWORD": "p"}


def esx01(**gpu: bool) -> ObservedInventory:
    return ObservedInventory(
        hosts=(
            host(
                "esx01",
                (dev(GPU), dev(GPU_AUDIO), dev(NIC, X710)),
                (
                    info(GPU, dependent=GPU_AUDIO, **gpu),
                    info(GPU_AUDIO, dependent=GPU, **gpu),
                    info(NIC),
                ),
                in_use_by_host={NIC: "vmnic0 carries vmkernel port vmk0"},
                version="8.0.2",
                device_rebind_without_reboot_supported=True,
            ),
        )
    )


def policy(name: str, **spec: Any) -> dict[str, Any]:
    body = {"hosts": {"names": ["esx01"]}, "devices": [{"address": GPU}], **spec}
    return {
        "apiVersion": "dpio.io/v1alpha1",
        "kind": "HostPassthroughPolicy",
        "metadata": {"name": name},
        "spec": body,
    }


class FakeVCenter(commands.Context):
    """The command's context with vCenter answering from `inventory`."""

    def __init__(self, inventory: ObservedInventory) -> None:
        super().__init__(env=dict(ENV), out=io.StringIO(), err=io.StringIO())
        self.inventory = inventory
        self.reads: list[str] = []

    def read_inventory(self, credentials: Credentials, names: Any = ()) -> ObservedInventory:
        self.reads.append(credentials.server)
        return self.inventory


def run_plan(
    tmp_path: Path, inventory: ObservedInventory, *bodies: dict[str, Any], output: str = "text"
) -> tuple[int, str, FakeVCenter]:
    path = tmp_path / "policies.yaml"
    path.write_text(yaml.safe_dump_all(bodies))
    args = build_parser().parse_args(["plan", "-f", str(path), "-o", output, "--insecure"])
    ctx = FakeVCenter(inventory)
    code = commands.plan(args, ctx)
    return code, ctx.out.getvalue(), ctx  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("gpu", "spec", "code", "lines"),
    [
        # Already right: no call, exit 0.
        ({"enabled": True, "active": True}, {}, 0, ["= esx01: no change"]),
        # Enable; the dependent audio function goes with it; rebind without reboot (applyNow).
        (
            {},
            {},
            2,
            [
                "~ esx01: UpdatePassthruConfig (host-esx01)",
                f"+ enable   {GPU}  10de:20b5 GA100 [A100]  applyNow",
                f"+ enable   {GPU_AUDIO}  10de:20b5 GA100 [A100]  applyNow",
            ],
        ),
        # applyNow: Never leaves the change pending a reboot, which the plan says.
        (
            {},
            {"applyNow": "Never"},
            2,
            [f"+ enable   {GPU}  10de:20b5 GA100 [A100]", "reboot required; reboot.policy Manual"],
        ),
        # A label on an enabled device is a relabel, not an enable.
        (
            {"enabled": True, "active": True},
            {"devices": [A100_LABELLED]},
            2,
            [f"~ relabel  {GPU}  10de:20b5 GA100 [A100]  hardwareLabel=a applyNow"],
        ),
        # ESXi's own NIC is refused: no change, exit 0, and the reason is shown.
        (
            {"enabled": True, "active": True},
            {"devices": [{"address": NIC}]},
            0,
            [
                "= esx01: no change",
                f"! refused DeviceInUse: esx01 {NIC}: "
                "Used by ESXi (vmnic0 carries vmkernel port vmk0)",
            ],
        ),
        # Rolling: the first rolling-reboot step is part of the plan.
        (
            {"enabled": True, "active": False},
            {"reboot": {"policy": "Rolling"}},
            2,
            ["reboot required; reboot.policy Rolling", "> EnterMaintenanceMode esx01"],
        ),
    ],
)
def test_plan_text_and_exit_code(
    tmp_path: Path, gpu: dict[str, bool], spec: dict[str, Any], code: int, lines: list[str]
) -> None:
    got_code, out, _ = run_plan(tmp_path, esx01(**gpu), policy("gpu", **spec))

    assert got_code == code
    for line in lines:
        assert line in out, out


def test_older_policy_in_the_same_files_wins(tmp_path: Path) -> None:
    # Both are new: the first in the files counts as created first, and the older one wins.
    older = policy("older")
    newer = policy("newer", devices=[{"address": NIC}], exclusive=True)
    _, out, _ = run_plan(tmp_path, esx01(enabled=True, active=True), older, newer)

    newer_part = out[out.index("HostPassthroughPolicy/newer") :]
    assert f"! conflict PolicyConflict: esx01 {GPU}: policy older wins" in newer_part
    assert "conflict" not in out[: out.index("HostPassthroughPolicy/newer")]


def test_one_inventory_read_per_vcenter(tmp_path: Path) -> None:
    _, _, ctx = run_plan(tmp_path, esx01(), policy("a"), policy("b"))

    assert ctx.reads == ["vc.lab:443"]


def test_json_output(tmp_path: Path) -> None:
    code, out, _ = run_plan(tmp_path, esx01(), policy("gpu"), output="json")

    data = json.loads(out)
    host_plan = data["objects"][0]["hosts"][0]
    assert (code, data["changed"]) == (2, True)
    changes = host_plan["updatePassthruConfig"]
    assert [(c["address"], c["action"], c["applyNow"]) for c in changes] == [
        (GPU, "enable", True),
        (GPU_AUDIO, "enable", True),
    ]
    assert [d["state"] for d in host_plan["devices"]] == ["Active"]  # projected: applyNow


def test_invalid_manifest_names_file_and_field(tmp_path: Path) -> None:
    bad = policy("bad", devices=[{"address": "zz"}])

    with pytest.raises(
        commands.ManifestError, match=r"policies.yaml: HostPassthroughPolicy/bad: spec.devices"
    ):
        run_plan(tmp_path, esx01(), bad)


def test_stalled_policy_is_shown_with_its_reason() -> None:
    report = PolicyReport(
        "p", "flags", RebootPolicy.MANUAL, PolicyPlan(stalled=Problem("InvalidSpec", "bad regex"))
    )

    assert "! Stalled InvalidSpec: bad regex" in render_text(report)
    assert not report.changed


def test_summary_counts_over_all_policies(tmp_path: Path) -> None:
    _, out, _ = run_plan(tmp_path, esx01(), policy("a"), policy("b", applyNow="Never"))

    assert out.splitlines()[-1] == (
        "Plan: 2 UpdatePassthruConfig call(s) (4 to enable or relabel, 0 to disable), "
        "1 host(s) needing a reboot, 0 rolling-reboot step(s), 0 refused, 0 conflict(s)."
    )
    assert summary([]).startswith("Plan: 0 UpdatePassthruConfig")


def test_a_suspended_policy_plans_no_call_and_says_what_it_would_do(tmp_path: Path) -> None:
    code, out, _ = run_plan(tmp_path, esx01(), policy("gpu", suspend=True))

    assert code == 0  # the operator would call nothing
    assert "= esx01: no change" in out
    assert "note: spec.suspend is true" in out
    assert f"update passthrough on esx01 (enable {GPU}, {GPU_AUDIO})" in out
