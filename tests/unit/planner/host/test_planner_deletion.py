"""deletionPolicy: Retain changes nothing; Disable takes back what the policy selects."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from tests.unit.planner.builders import GPU, GPU_AUDIO, NIC, NOW, X710, dev, gpu_host, host, info
from tests.unit.planner.builders import spec as make_spec

from dpio.planner.host.deletion import plan_deletion
from dpio.planner.host.host_plan import PassthruChange
from dpio.planner.host.rules import OtherPolicy
from dpio.planner.observed import ObservedHost, ObservedInventory


def delete(observed: ObservedHost, others: tuple[OtherPolicy, ...] = (), **fields: Any) -> list:
    fields.setdefault("deletionPolicy", "Disable")
    return list(
        plan_deletion(
            name="gpu-hosts",
            spec=make_spec(**fields),
            inventory=ObservedInventory(hosts=(observed,)),
            others=others,
        )
    )


@pytest.mark.parametrize(
    ("observed", "fields", "changes"),
    [
        (gpu_host(enabled=True, active=True), {"deletionPolicy": "Retain"}, []),
        (gpu_host(enabled=True, active=True), {}, [PassthruChange(GPU, False, False)]),
        (
            gpu_host(enabled=True, active=True, device_rebind_without_reboot_supported=True),
            {},
            [PassthruChange(GPU, False, True)],
        ),
        (gpu_host(), {}, []),  # already disabled: no call
        (gpu_host(enabled=True, attached_to_vms={GPU: ("vm-a",)}), {}, []),
        (gpu_host(enabled=True, connection_state="disconnected"), {}, []),
    ],
)
def test_deletion(observed: ObservedHost, fields: dict[str, str], changes: list) -> None:
    updates = delete(observed, **fields)
    assert [c for u in updates for c in u.changes] == changes


def test_unselected_devices_are_not_touched_on_delete() -> None:
    observed = host(
        "esx01", (dev(GPU), dev(NIC, X710)), (info(GPU, enabled=True), info(NIC, enabled=True))
    )
    assert [c.id for u in delete(observed) for c in u.changes] == [GPU]


def test_dependents_go_with_the_device() -> None:
    observed = host(
        "esx01",
        (dev(GPU), dev(GPU_AUDIO)),
        (info(GPU, enabled=True, dependent=GPU_AUDIO), info(GPU_AUDIO, enabled=True)),
    )
    assert [c.id for u in delete(observed) for c in u.changes] == [GPU, GPU_AUDIO]


def test_device_another_policy_selects_is_kept() -> None:
    other = OtherPolicy("twin", NOW + timedelta(days=1), make_spec())
    assert delete(gpu_host(enabled=True, active=True), (other,)) == []
