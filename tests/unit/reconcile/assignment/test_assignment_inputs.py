"""What an assignment reads of its policy: the status rows for the VM's host, and whether the
policy has reported on that host for its current spec (`PolicyView.host_reported`)."""

from __future__ import annotations

from typing import Any

import pytest
from tests.unit.reconcile.assignment.fakes import policy_body

from dpio.reconcile.assignment.inputs import parse_policy, policy_view


@pytest.mark.parametrize(
    ("observed_generation", "host", "reported", "rows"),
    [
        pytest.param(1, "esx01", True, 1, id="reported"),
        pytest.param(None, "esx01", False, 1, id="no-status-yet"),
        pytest.param(0, "esx01", False, 1, id="spec-changed-since"),
        pytest.param(1, "esx02", False, 0, id="host-not-in-status"),
        pytest.param(1, None, False, 0, id="vm-host-unknown"),
    ],
)
def test_the_policy_has_reported_on_the_host_for_its_current_spec(
    observed_generation: int | None, host: str | None, reported: bool, rows: int
) -> None:
    body: dict[str, Any] = policy_body()
    if observed_generation is not None:
        body["status"]["observedGeneration"] = observed_generation
    policy = parse_policy(body)
    assert policy is not None
    view = policy_view(policy, host)
    assert view.host_reported is reported
    assert len(view.host_devices) == rows
