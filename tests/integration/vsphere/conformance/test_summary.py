"""The suite's verdict: it read at least this much, ran at least this many govc commands, and
nothing failed. Collected after test_conformance.py, so it runs last."""

from __future__ import annotations

import pytest
from tests.integration.vsphere.conformance.reading import EXCLUDED, EXCLUDED_FIELDS, Report

pytestmark = [pytest.mark.sandbox, pytest.mark.slow]

#: Floors for a run over both inventories (default + generated); each alone reads less.
MIN_PROPERTIES = 4000
MIN_GOVC_COMMANDS = 150


def test_conformance_summary(report: Report) -> None:
    if report.properties_read == 0 and report.govc_commands == 0:
        pytest.skip("the conformance tests did not run in this session (selected alone)")
    print(report.summary())
    print(f"excluded: {len(EXCLUDED)} properties, {len(EXCLUDED_FIELDS)} required fields (README)")
    assert report.failures == []
    assert report.properties_read >= MIN_PROPERTIES
    assert report.govc_commands >= MIN_GOVC_COMMANDS
