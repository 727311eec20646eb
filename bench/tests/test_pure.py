"""The benchmark's own arithmetic and parsing: run with `.venv/bin/pytest bench/tests`."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from pyVmomi import vim
from pyVmomi.VmomiSupport import DataObject

from bench import govc_loop, kube, manifests, plot, read_costs, restart, stage
from bench.__main__ import add_simulator_cpu
from bench.inventory import device_address, host_names
from bench.report import Result, Table, percentile, ratio
from bench.scenarios import together
from bench.stage import SimulatorCPU


def _sample(verb: str, resource: str, subresource: str, code: str, value: str) -> str:
    labels = (
        f'code="{code}",component="apiserver",dry_run="",group="dpio.io",'
        f'resource="{resource}",scope="resource",subresource="{subresource}",'
        f'verb="{verb}",version="v1alpha1"'
    )
    return f"apiserver_request_total{{{labels}}} {value}"


METRICS = "\n".join(
    [
        "# HELP apiserver_request_total [STABLE] Counter of apiserver requests",
        "# TYPE apiserver_request_total counter",
        _sample("PATCH", "hostpassthroughpolicies", "status", "200", "7"),
        _sample("PATCH", "hostpassthroughpolicies", "status", "409", "2"),
        _sample("GET", "secrets", "", "200", "1.2e+01"),
        'apiserver_request_duration_seconds_count{resource="secrets",verb="GET"} 99',
    ]
)


def test_request_totals_sum_response_codes_and_skip_other_metrics() -> None:
    totals = kube.parse_request_totals(METRICS)
    assert totals == Counter(
        {
            ("PATCH", "hostpassthroughpolicies", "status"): 9,
            ("GET", "secrets", ""): 12,
        }
    )


@pytest.mark.parametrize(
    ("delta", "expected"),
    [
        ({("PATCH", kube.HPP, "status"): 3, ("PATCH", kube.HPP, ""): 1}, 4),
        ({("POST", kube.HPP, ""): 100}, 0),  # the bench's own creates are not the operator's
        ({("POST", "events", ""): 5, ("GET", "secrets", ""): 9}, 0),
        ({("PUT", kube.VMDA, "status"): 2, ("DELETE", kube.VMDA, ""): 1}, 3),
    ],
)
def test_writes_count_updates_of_dpio_objects_only(
    delta: dict[kube.RequestKey, int], expected: int
) -> None:
    assert kube.writes(delta) == expected


def _body(generation: int, observed: int | None, reconciling: str | None, ready: str) -> Any:
    conditions = [{"type": "Ready", "status": ready}]
    if reconciling is not None:
        conditions.append({"type": "Reconciling", "status": reconciling})
    status = (
        {"conditions": conditions}
        if observed is None
        else {"observedGeneration": observed, "conditions": conditions}
    )
    return {"metadata": {"generation": generation}, "status": status}


@pytest.mark.parametrize(
    ("body", "settled", "ready"),
    [
        (_body(2, 2, "False", "True"), True, True),
        (_body(2, 2, "False", "False"), True, False),  # settled on an error is still settled
        (_body(2, 1, "False", "True"), False, False),  # an older generation's verdict
        (_body(2, 2, "True", "Unknown"), False, False),
        (_body(1, None, None, "Unknown"), False, False),
        ({"metadata": {"generation": 1}}, False, False),
    ],
)
def test_settled_and_ready_follow_kstatus(body: Any, settled: bool, ready: bool) -> None:
    assert (kube.settled(body), kube.ready(body)) == (settled, ready)


@pytest.mark.parametrize(
    ("values", "q", "expected"),
    [
        ([], 50, None),
        ([3.0], 99, 3.0),
        ([1.0, 2.0, 3.0, 4.0], 50, 2.0),
        ([float(i) for i in range(1, 101)], 99, 99.0),
        ([float(i) for i in range(1, 21)], 99, 20.0),
    ],
)
def test_percentile_is_nearest_rank(values: list[float], q: float, expected: float | None) -> None:
    assert percentile(values, q) == expected


@pytest.mark.parametrize(
    ("num", "den", "expected"), [(10.0, 2.0, 5.0), (None, 2.0, None), (3.0, 0.0, None)]
)
def test_ratio_is_missing_rather_than_infinite(
    num: float | None, den: float | None, expected: float | None
) -> None:
    assert ratio(num, den) == expected


def test_per_device_policies_cover_each_device_once() -> None:
    bodies = manifests.per_device_policies(host_names(3), 8, 20)
    pairs = {(b["spec"]["hosts"]["names"][0], b["spec"]["devices"][0]["address"]) for b in bodies}
    assert len(pairs) == 20
    assert ("esx-0003.bench.local", device_address(3)) in pairs
    assert ("esx-0003.bench.local", device_address(4)) not in pairs


def test_table_renders_missing_values_as_dash() -> None:
    table = Table("T", ["a", "b"])
    table.add("x", None)
    table.add("y", 0.123456)
    assert table.render().splitlines()[-2:] == ["x  -    ", "y  0.123"]


def test_simulator_cpu_table_and_figures() -> None:
    result = Result("hosts")
    add_simulator_cpu(
        result,
        [
            SimulatorCPU("hosts/vcsim-operator", 1.234, 5.678, 80.0),
            SimulatorCPU("hosts/vcsim-ansible", 1.0, None, None),
        ],
    )
    assert result.tables[0].rows == [
        ("hosts/vcsim-operator", 1.23, 5.68, 80.0),
        ("hosts/vcsim-ansible", 1.0, None, None),
    ]
    assert result.figures["simulator_cpu"]["hosts/vcsim-operator"]["scenario_cpu_seconds"] == 5.68
    assert "-" in result.tables[0].render()  # a gone process reads as "-", not 0


def test_no_simulator_no_table() -> None:
    result = Result("x")
    add_simulator_cpu(result, [])
    assert result.tables == []
    assert "simulator_cpu" not in result.figures


def test_the_govc_loop_runs_two_commands_per_vm_and_sets_mmio_only_for_large_bars() -> None:
    jobs = [
        govc_loop.Job("/DC1/vm/vm-00001", "0000:20:00.0", 4096, 128),
        govc_loop.Job("/DC1/vm/vm 2", "0000:21:00.0", 2048, 0),
    ]
    lines = govc_loop.script(jobs).splitlines()
    assert lines[:2] == ["#!/usr/bin/env bash", "set -euo pipefail"]
    assert lines[2:] == [
        "govc device.pci.add -vm /DC1/vm/vm-00001 0000:20:00.0",
        "govc vm.change -vm /DC1/vm/vm-00001 -mem.reservation 4096"
        " -e pciPassthru.use64bitMMIO=TRUE -e pciPassthru.64bitMMIOSizeGB=128",
        "govc device.pci.add -vm '/DC1/vm/vm 2' 0000:21:00.0",
        "govc vm.change -vm '/DC1/vm/vm 2' -mem.reservation 2048",
    ]


@pytest.mark.parametrize(("gb", "size"), [(1, 1), (17, 32), (32, 32), (33, 64), (128, 128)])
def test_mmio_size_is_the_next_power_of_two(gb: int, size: int) -> None:
    assert govc_loop.mmio_size(gb) == size


def test_a_scale_curve_is_drawn_with_its_linear_reference(tmp_path: Path) -> None:
    runs: list[dict[str, Any]] = [
        {"objects": 10, "seconds": 2.0, "calls_per_object": 3.0, "peak_rss_mib": 90.0},
        {"objects": 100, "seconds": 30.0, "calls_per_object": 2.5, "peak_rss_mib": 120.0},
        {"objects": 1000, "seconds": None, "calls_per_object": 0.0, "peak_rss_mib": 0.0},
    ]
    path = plot.curve("policies", runs, tmp_path / "scale-policies.svg")
    assert path == tmp_path / "scale-policies.svg"
    svg = path.read_text()
    assert svg.startswith("<?xml")
    assert "<svg" in svg
    assert "linear" in svg
    assert "measured" in svg


def test_no_finished_size_no_curve(tmp_path: Path) -> None:
    runs: list[dict[str, Any]] = [
        {"objects": 10, "seconds": None, "calls_per_object": 0.0, "peak_rss_mib": 0.0}
    ]
    assert plot.curve("policies", runs, tmp_path / "x.svg") is None
    assert not (tmp_path / "x.svg").exists()


OPERATOR_METRICS = """\
# HELP dpio_objects Objects seen by the operator
# TYPE dpio_objects gauge
dpio_objects{kind="HostPassthroughPolicy"} 1.0
dpio_objects{kind="VMDeviceAssignment"} 40.0
# HELP dpio_queue_depth Keys waiting for or in a reconcile
# TYPE dpio_queue_depth gauge
dpio_queue_depth{kind="HostPassthroughPolicy"} 0.0
dpio_queue_depth{kind="VMDeviceAssignment"} %(queued)s
# HELP dpio_reconcile_total Reconciles run, by kind
# TYPE dpio_reconcile_total counter
dpio_reconcile_total{kind="HostPassthroughPolicy"} 3.0
dpio_reconcile_total{kind="VMDeviceAssignment"} %(reconciles)s
# HELP dpio_reconcile_created Reconciles run, by kind
# TYPE dpio_reconcile_created gauge
dpio_reconcile_created{kind="VMDeviceAssignment"} 1.7e9
"""


@pytest.mark.parametrize(
    ("reconciles", "queued", "expected", "resumed"),
    [
        ("40.0", "0.0", 41, True),  # every object reconciled once, nothing queued
        ("39.0", "0.0", 41, False),  # one assignment not reconciled yet
        ("52.0", "2.0", 41, False),  # keys still queued
        ("40.0", "0.0", 50, False),  # the cache does not hold every object yet
    ],
)
def test_a_restarted_operator_has_resumed_when_each_object_ran_and_nothing_waits(
    reconciles: str, queued: str, expected: int, resumed: bool
) -> None:
    progress = restart.progress(OPERATOR_METRICS % {"reconciles": reconciles, "queued": queued})
    assert progress.objects == {"HostPassthroughPolicy": 1.0, "VMDeviceAssignment": 40.0}
    assert progress.reconciles["VMDeviceAssignment"] == float(reconciles)
    assert progress.resumed(expected) is resumed


@pytest.mark.parametrize("objects", [40, 1000, 5000, 13])
def test_together_gives_each_vm_the_one_policy_that_offers_its_host_and_gpu(objects: int) -> None:
    p = together.plan(objects)
    offered = {}
    for body in p.policies:
        (host,) = body["spec"]["hosts"]["names"]
        (device,) = body["spec"]["devices"]
        offered[body["metadata"]["name"]] = (host, device["address"])
    assert len(offered) == objects
    assert len(set(offered.values())) == objects  # no GPU offered by two policies
    hosts = host_names(p.hosts)
    used = set()
    for i, body in enumerate(p.assignments):
        spec = body["spec"]
        (device,) = spec["devices"]
        # VM i sits on host i mod hosts (dpio-vcsim generate)
        assert offered[spec["policyRef"]["name"]] == (hosts[i % p.hosts], device["pci"]["address"])
        used.add(spec["policyRef"]["name"])
    assert len(used) == objects  # every policy is drawn on by exactly one assignment


def test_read_costs_alternates_every_case_the_same_number_of_times() -> None:
    calls: Counter[str] = Counter()

    def case(name: str) -> Callable[[], object]:
        return lambda: calls.update([name])

    medians = read_costs.measure({"a": case("a"), "b": case("b")}, rounds=3, repeat=4)
    assert calls == Counter({"a": 12, "b": 12})
    assert set(medians) == {"a", "b"}
    assert all(m >= 0 for m in medians.values())


def test_read_costs_memoized_lists_match_pyvmomi_and_are_undone() -> None:
    original = DataObject.__dict__["_GetPropertyList"]
    kinds = (vim.vm.device.VirtualPCIPassthrough, vim.host.PciPassthruInfo, vim.vm.ConfigSpec)

    def lists() -> list[Any]:
        return [getattr(k, "_GetPropertyList")() for k in kinds]  # noqa: B009 (untyped in pyVmomi)

    assert read_costs._memoized(lists)() == lists()
    assert DataObject.__dict__["_GetPropertyList"] is original


def test_an_operator_tracing_its_allocations_may_start_slowly() -> None:
    assert stage.startup_timeout({}) == 60.0
    assert stage.startup_timeout({"DPIO_TRACEMALLOC_DIR": "/tmp/tm"}) >= 300.0


def test_an_operator_writing_a_memory_report_may_stop_slowly() -> None:
    assert stage.stop_timeout({}) == 30.0
    assert stage.stop_timeout({"DPIO_MEMORY_REPORT_DIR": "/tmp/m"}) >= 300.0
    assert stage.stop_timeout({"DPIO_TRACEMALLOC_DIR": "/tmp/tm"}) >= 300.0
