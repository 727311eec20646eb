"""Reboot windows: open or not at `now`, when the next opens, across midnight and DST changes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from dpio.api.policy import RebootWindow
from dpio.planner.host.windows import ALWAYS, WindowState, time_zone, window_state


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def window(days: str, start: str, duration: str, zone: str = "Europe/Berlin") -> RebootWindow:
    return RebootWindow.model_validate(
        {"days": days.split(","), "start": start, "duration": duration, "timeZone": zone}
    )


NIGHTLY_MON = window("Mon", "22:00", "4h")  # 2025-01-06 is a Monday; Berlin is UTC+1 in winter


@pytest.mark.parametrize(
    ("windows", "now", "expected"),
    [
        pytest.param([], "2025-01-06T12:00:00", ALWAYS, id="no-windows-always-open"),
        pytest.param(
            [NIGHTLY_MON], "2025-01-06T20:59:59",
            WindowState(open=False, next_start=utc("2025-01-06T21:00:00")),
            id="just-before-start",
        ),
        pytest.param(
            [NIGHTLY_MON], "2025-01-06T21:00:00",
            WindowState(open=True, closes=utc("2025-01-07T01:00:00"),
                        next_start=utc("2025-01-13T21:00:00")),
            id="at-start-open",
        ),
        pytest.param(
            [NIGHTLY_MON], "2025-01-07T00:30:00",  # Tuesday 01:30 in Berlin: Monday's window
            WindowState(open=True, closes=utc("2025-01-07T01:00:00"),
                        next_start=utc("2025-01-13T21:00:00")),
            id="crosses-midnight",
        ),
        pytest.param(
            [NIGHTLY_MON], "2025-01-07T01:00:00",
            WindowState(open=False, next_start=utc("2025-01-13T21:00:00")),
            id="end-is-exclusive",
        ),
        pytest.param(
            [NIGHTLY_MON], "2025-01-08T10:00:00",
            WindowState(open=False, next_start=utc("2025-01-13T21:00:00")),
            id="midweek-next-monday",
        ),
        pytest.param(
            [NIGHTLY_MON], "2025-07-07T20:00:00",  # summer: 22:00 CEST is 20:00 UTC
            WindowState(open=True, closes=utc("2025-07-08T00:00:00"),
                        next_start=utc("2025-07-14T20:00:00")),
            id="summer-time-offset",
        ),
        pytest.param(
            # Berlin springs forward on Sun 2025-03-30 at 02:00 -> 03:00: 02:30 does not exist
            # and opens with the offset before the change, 01:30 UTC = 03:30 CEST.
            [window("Sun", "02:30", "1h")], "2025-03-30T01:00:00",
            WindowState(open=False, next_start=utc("2025-03-30T01:30:00")),
            id="dst-gap-start-opens-an-hour-later",
        ),
        pytest.param(
            # Sat 22:00 CET (21:00 UTC) for 8h of elapsed time: until 05:00 UTC = 07:00 CEST.
            [window("Sat", "22:00", "8h")], "2025-03-30T04:59:00",
            WindowState(open=True, closes=utc("2025-03-30T05:00:00"),
                        next_start=utc("2025-04-05T20:00:00")),
            id="spans-spring-forward-elapsed-duration",
        ),
        pytest.param(
            # Berlin falls back on Sun 2025-10-26 at 03:00 -> 02:00: 02:30 happens twice and
            # the window opens at the first, 02:30 CEST = 00:30 UTC.
            [window("Sun", "02:30", "1h")], "2025-10-26T00:00:00",
            WindowState(open=False, next_start=utc("2025-10-26T00:30:00")),
            id="dst-repeated-start-opens-at-the-first",
        ),
        pytest.param(
            [window("Sun", "02:30", "1h")], "2025-10-26T01:15:00",
            WindowState(open=True, closes=utc("2025-10-26T01:30:00"),
                        next_start=utc("2025-11-02T01:30:00")),
            id="dst-repeated-window-lasts-its-duration",
        ),
        pytest.param(
            [window("Fri", "23:00", "2h", "UTC")], "2025-01-11T00:30:00",  # Saturday
            WindowState(open=True, closes=utc("2025-01-11T01:00:00"),
                        next_start=utc("2025-01-17T23:00:00")),
            id="friday-window-open-on-saturday",
        ),
        pytest.param(
            [window("Sat,Sun", "01:00", "3h", "America/New_York")], "2025-01-10T12:00:00",
            WindowState(open=False, next_start=utc("2025-01-11T06:00:00")),
            id="new-york-next-is-the-first-of-two-days",
        ),
        pytest.param(
            [window("Tue", "03:00", "1h", "UTC"), NIGHTLY_MON], "2025-01-07T01:30:00",
            WindowState(open=False, next_start=utc("2025-01-07T03:00:00")),
            id="earliest-of-several-windows",
        ),
        pytest.param(
            # 22:00-02:00 Berlin and 01:00-03:00 UTC overlap: open until the later closes.
            [NIGHTLY_MON, window("Tue", "00:30", "2h", "UTC")], "2025-01-06T21:30:00",
            WindowState(open=True, closes=utc("2025-01-07T02:30:00"),
                        next_start=utc("2025-01-07T00:30:00")),
            id="chained-windows-extend-the-close",
        ),
        pytest.param(
            [window("Mon,Tue,Wed,Thu,Fri,Sat,Sun", "00:00", "24h", "UTC")], "2025-01-08T10:00:00",
            WindowState(open=True, closes=utc("2025-01-17T00:00:00"),  # as far as it looks
                        next_start=utc("2025-01-09T00:00:00")),
            id="every-day-all-day-chains-for-the-week-searched",
        ),
    ],
)  # fmt: skip
def test_window_state(windows: list[RebootWindow], now: str, expected: WindowState) -> None:
    assert window_state(windows, utc(now)) == expected


@pytest.mark.parametrize(
    "windows",
    [
        [NIGHTLY_MON],
        [window("Sun", "02:30", "1h")],
        [window("Sat", "22:00", "8h"), window("Wed,Thu", "12:15", "45m", "Asia/Kolkata")],
        [window("Sun", "01:30", "90m", "America/New_York")],
        [window("Fri", "23:30", "30m", "Australia/Lord_Howe")],  # a 30-minute DST shift
    ],
)
def test_next_start_opens_a_window_and_nothing_opens_before_it(
    windows: list[RebootWindow],
) -> None:
    """Every 70 minutes over March to April and October to November (both DST changes in
    Europe and America, Lord Howe's in April and October)."""
    for first in (utc("2025-03-01T00:00:00"), utc("2025-10-01T00:00:00")):
        for step in range(0, 61 * 24 * 60 // 70):
            now = first + timedelta(minutes=70 * step)
            state = window_state(windows, now)
            assert state.next_start is not None
            assert state.next_start > now
            assert window_state(windows, state.next_start).open
            if state.open:
                assert state.closes is not None
                assert state.closes > now
                assert window_state(windows, state.closes - timedelta(seconds=1)).open
                assert not window_state(windows, state.closes).open
            else:
                # Closed: still closed a second before the next start.
                assert not window_state(windows, state.next_start - timedelta(seconds=1)).open


@pytest.mark.parametrize("name", ["Europe/Berlin", "UTC", "America/Argentina/Buenos_Aires"])
def test_known_time_zones_load(name: str) -> None:
    assert time_zone(name).key == name


@pytest.mark.parametrize("name", ["Europe/Atlantis", "Mars/Olympus_Mons", "Etc/GMT+99"])
def test_an_unknown_time_zone_is_a_value_error(name: str) -> None:
    with pytest.raises(ValueError, match="unknown time zone"):
        window_state([window("Mon", "22:00", "4h", name)], utc("2025-01-06T12:00:00"))


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("days", ["Monday"]),
        ("days", []),
        ("start", "24:00"),
        ("start", "7:30"),
        ("start", "22:60"),
        ("duration", "0s"),
        ("duration", "169h"),
        ("duration", "four hours"),
        ("timeZone", "../etc/passwd"),
        ("timeZone", "Europe Berlin"),
    ],
)
def test_the_model_refuses_malformed_windows(field: str, value: Any) -> None:
    wire: dict[str, Any] = {"days": ["Mon"], "start": "22:00", "duration": "4h"}
    wire[field] = value
    with pytest.raises(ValidationError, match=field):
        RebootWindow.model_validate(wire)
