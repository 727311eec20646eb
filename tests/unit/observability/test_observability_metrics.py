"""Metrics: names and labels after simulated reconciles, SOAP calls and cached objects."""

from __future__ import annotations

import asyncio
import itertools
import socket
import urllib.request
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest

from dpio.observability import metrics, status_facts
from dpio.reconcile.cache import Body
from dpio.reconcile.controller import Controller
from dpio.reconcile.queue import Backoff, Result

_kinds = itertools.count()


def _kind() -> str:
    """A kind label of its own per test: the registry is process-wide."""
    return f"TestKind{next(_kinds)}"


def _value(name: str, **labels: str) -> float:
    return metrics.REGISTRY.get_sample_value(name, labels) or 0.0


def _body(name: str, conditions: list[dict[str, str]] | None = None, **status: Any) -> Body:
    body: dict[str, Any] = {"kind": "X", "metadata": {"name": name, "generation": 1}, "spec": {}}
    if conditions is not None or status:
        body["status"] = {"conditions": conditions or [], **status}
    return body


def _ready(status: str, reason: str) -> dict[str, str]:
    return {"type": "Ready", "status": status, "reason": reason}


class BoomError(Exception):
    pass


@pytest.mark.parametrize(
    ("outcomes", "total", "errors"),
    [
        (["ok"], 1, 0),
        (["failed"], 1, 1),
        (["raise"], 1, 1),
        (["failed", "ok"], 2, 1),
    ],
)
def test_controller_counts_reconciles_and_errors_by_kind(
    outcomes: list[str], total: int, errors: int
) -> None:
    kind = _kind()
    done: list[str] = []

    async def reconcile(body: Body) -> Result:
        outcome = outcomes[len(done)]
        done.append(outcome)
        if outcome == "raise":
            raise BoomError
        return Result(failed=outcome == "failed")

    async def main() -> None:
        # Backoff far beyond the test: each reconcile is started by an enqueue, not by a retry.
        controller = Controller(kind, reconcile, backoff=Backoff(60, 60))
        controller.observe("ADDED", _body("a"))
        controller.start()
        for step in range(len(outcomes)):
            if step:
                controller.enqueue(("", "a"))
            for _ in range(100):
                if len(done) > step:
                    break
                await asyncio.sleep(0.01)
        await asyncio.sleep(0.01)
        await controller.stop()

    asyncio.run(main())
    assert _value("dpio_reconcile_total", kind=kind) == total
    assert _value("dpio_reconcile_errors_total", kind=kind) == errors
    assert _value("dpio_reconcile_duration_seconds_count", kind=kind) == total


class FakeStub:
    """pyVmomi's stub surface that `counted` wraps: InvokeMethod(mo, info, args)."""

    def __init__(self, fail: set[str]) -> None:
        self.fail = fail

    def InvokeMethod(self, mo: Any, info: Any, args: Any) -> str:
        if info.wsdlName in self.fail:
            raise BoomError(info.wsdlName)
        return f"{info.wsdlName} ok"


@pytest.mark.parametrize(
    ("calls", "fail", "expected_calls", "expected_errors"),
    [
        (["RetrievePropertiesEx"], set(), {"RetrievePropertiesEx": 1}, {}),
        (
            ["UpdatePassthruConfig", "UpdatePassthruConfig", "Fetch"],
            set(),
            {"UpdatePassthruConfig": 2, "Fetch": 1},
            {},
        ),
        (["Login", "Login"], {"Login"}, {"Login": 2}, {"Login": 2}),
    ],
)
def test_counted_stub_counts_every_call_per_soap_method(
    calls: list[str],
    fail: set[str],
    expected_calls: dict[str, int],
    expected_errors: dict[str, int],
) -> None:
    vcenter, other = f"vc{next(_kinds)}.lab:443", f"vc{next(_kinds)}.lab:443"
    stub = FakeStub(fail)
    invoke = metrics.counted(stub.InvokeMethod, vcenter)
    metrics.counted(FakeStub(set()).InvokeMethod, other)(
        None, SimpleNamespace(wsdlName="Login"), ()
    )
    for name in calls:
        info = SimpleNamespace(wsdlName=name)
        if name in fail:
            with pytest.raises(BoomError):
                invoke(None, info, ())
        else:
            assert invoke(None, info, ()) == f"{name} ok"
    for m in set(calls):
        labels = {"vcenter": vcenter, "method": m}
        assert _value("dpio_vcenter_calls_total", **labels) == expected_calls[m]
        assert _value("dpio_vcenter_call_errors_total", **labels) == expected_errors.get(m, 0)
        assert _value("dpio_vcenter_call_duration_seconds_count", **labels) == expected_calls[m]
    # Another vCenter's calls are its own series.
    assert _value("dpio_vcenter_calls_total", vcenter=other, method="Login") == 1
    assert metrics.is_counted(invoke)
    assert not metrics.is_counted(stub.InvokeMethod)


@pytest.mark.parametrize(
    ("bodies", "expected"),
    [
        ([], {}),
        ([_body("a")], {("Ready", "Unknown", ""): 1}),
        (
            [
                _body("a", [_ready("True", "Reconciled")]),
                _body("b", [_ready("True", "Reconciled")]),
            ],
            {("Ready", "True", "Reconciled"): 2},
        ),
        (
            [
                _body("a", [_ready("False", "RebootRequired")]),
                _body("b", [_ready("False", "VCenterUnreachable")]),
                _body(
                    "c",
                    [
                        _ready("False", "InvalidSpec"),
                        {"type": "Stalled", "status": "True", "reason": "InvalidSpec"},
                    ],
                ),
            ],
            {
                ("Ready", "False", "RebootRequired"): 1,
                ("Ready", "False", "VCenterUnreachable"): 1,
                ("Ready", "False", "InvalidSpec"): 1,
                ("Stalled", "True", "InvalidSpec"): 1,
            },
        ),
    ],
)
def test_condition_counts(bodies: list[Body], expected: dict[tuple[str, str, str], int]) -> None:
    assert status_facts.condition_counts(bodies) == expected


@pytest.fixture
def tracked() -> Iterator[tuple[str, list[Body], list[int]]]:
    kind, depth = _kind(), [0]
    bodies: list[Body] = []
    source = metrics.Source(objects=lambda: bodies, depth=lambda: depth[0])
    metrics.track(kind, source)
    yield kind, bodies, depth
    metrics.untrack(kind, source)


def test_scrape_reports_objects_conditions_queue_and_policy_devices(
    tracked: tuple[str, list[Body], list[int]],
) -> None:
    kind, bodies, depth = tracked
    summary = {"hosts": 2, "devices": 4, "active": 3, "pendingReboot": 1}
    bodies += [
        _body("gpu", [_ready("False", "RebootRequired")], summary=summary),
        _body("nic", [_ready("True", "Reconciled")]),
    ]
    depth[0] = 3
    assert _value("dpio_objects", kind=kind) == 2
    assert _value("dpio_queue_depth", kind=kind) == 3
    ready_false = {"kind": kind, "type": "Ready", "status": "False", "reason": "RebootRequired"}
    assert _value("dpio_object_conditions", **ready_false) == 1
    assert _value("dpio_policy_hosts", policy="gpu") == 2
    assert [
        _value("dpio_policy_devices", policy="gpu", state=s)
        for s in ("matched", "active", "pendingReboot")
    ] == [4, 3, 1]
    # A deleted object leaves no series behind: state is read at scrape time.
    bodies.clear()
    assert _value("dpio_objects", kind=kind) == 0
    assert metrics.REGISTRY.get_sample_value("dpio_object_conditions", ready_false) is None
    assert metrics.REGISTRY.get_sample_value("dpio_policy_hosts", {"policy": "gpu"}) is None


def test_untrack_of_a_replaced_source_keeps_the_newer_one() -> None:
    kind = _kind()
    old = metrics.Source(objects=lambda: [_body("a")], depth=lambda: 0)
    new = metrics.Source(objects=lambda: [_body("a"), _body("b")], depth=lambda: 0)
    metrics.track(kind, old)
    metrics.track(kind, new)
    metrics.untrack(kind, old)  # the old controller stopping must not hide the new one
    assert _value("dpio_objects", kind=kind) == 2
    metrics.untrack(kind, new)
    assert metrics.REGISTRY.get_sample_value("dpio_objects", {"kind": kind}) is None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_serve_exposes_the_registry_over_http() -> None:
    metrics.record_reconcile("ServedKind", 0.01, failed=False)
    server = metrics.serve(_free_port(), "127.0.0.1")
    assert server is not None
    try:
        url = f"http://127.0.0.1:{server.port}/metrics"
        with urllib.request.urlopen(url, timeout=5) as response:
            text = response.read().decode()
    finally:
        server.stop()
    assert 'dpio_reconcile_total{kind="ServedKind"} 1.0' in text
    assert "# TYPE dpio_vcenter_calls_total counter" in text


def test_serve_port_zero_is_off_and_a_busy_port_is_not_fatal(
    caplog: pytest.LogCaptureFixture,
) -> None:
    assert metrics.serve(0) is None
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert metrics.serve(port, "127.0.0.1") is None
    assert "Could not serve metrics" in caplog.text
