"""SingleFlight: concurrent callers of one key share one call, its answer and its failure."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from dpio.vsphere.single_flight import SingleFlight

CALLERS = 8


def _together(
    flight: SingleFlight[str], keys: list[str], fail: bool = False
) -> tuple[list[object], list[str]]:
    """Every caller enters `do` while the first call is still running (it waits for all)."""
    calls: list[str] = []
    entered = threading.Barrier(len(keys))

    def call_for(key: str) -> str:
        calls.append(key)
        time.sleep(0.2)  # the others are inside `do` by now: the barrier let them all go
        if fail:
            raise RuntimeError(f"vCenter said no to {key}")
        return f"answer {key}"

    def caller(key: str) -> object:
        entered.wait()
        try:
            return flight.do(key, lambda: call_for(key))
        except RuntimeError as err:
            return err

    with ThreadPoolExecutor(len(keys)) as pool:
        results = list(pool.map(caller, keys))
    return results, calls


def test_concurrent_callers_of_one_key_share_one_call() -> None:
    results, calls = _together(SingleFlight(), ["host-1"] * CALLERS)
    assert calls == ["host-1"]
    assert results == ["answer host-1"] * CALLERS


def test_each_key_has_its_own_call() -> None:
    keys = ["host-1", "host-2"] * (CALLERS // 2)
    results, calls = _together(SingleFlight(), keys)
    assert sorted(calls) == ["host-1", "host-2"]
    assert results == [f"answer {k}" for k in keys]


def test_a_failure_reaches_every_waiter_and_the_next_caller_asks_again() -> None:
    flight: SingleFlight[str] = SingleFlight()
    results, calls = _together(flight, ["host-1"] * CALLERS, fail=True)
    assert calls == ["host-1"]
    assert all(isinstance(r, RuntimeError) and "host-1" in str(r) for r in results)
    assert flight.do("host-1", lambda: "later") == "later"  # nothing kept from the failure


def test_answers_are_not_kept_after_the_call() -> None:
    flight: SingleFlight[int] = SingleFlight()
    assert flight.do("k", lambda: 1) == 1
    assert flight.do("k", lambda: 2) == 2
    with pytest.raises(ZeroDivisionError):
        flight.do("k", lambda: 1 // 0)
