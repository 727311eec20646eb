"""Reboot windows (`spec.reboot.windows`): is one open at `now`, and when does the next open?

Pure: `now` is passed in. Each window opens at `start` (wall clock in its time zone) on each of
its `days` and stays open for `duration` of elapsed time, so a window may cross midnight (Mon
22:00 for 4h is open until Tue 02:00) and one that spans a daylight-saving change is still
`duration` long. A start the clock skips (02:30 on the spring-forward night in Europe/Berlin)
is read with the offset in force before the change, so it opens one hour later by the new clock
(03:30); a start the clock shows twice (02:30 on the fall-back night) opens at the first
(Python's `zoneinfo`, fold=0, PEP 495). Zones come from the IANA database (`tzdata`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dpio.api.common import parse_duration
from dpio.api.policy import RebootWindow, Weekday

_DAYS = tuple(Weekday)  # Monday first, as date.weekday() counts
# Windows last at most a week (MAX_WINDOW_HOURS): the window open at `now` started at most 7
# days ago, and the next one starts within 7 days, so 8 days either side find both.
_SEARCH_DAYS = 8


@dataclass(frozen=True, slots=True)
class WindowState:
    """`open`: a window is open at `now`; `closes`: when the open windows (chained, if one
    opens before the other closes) close; `next_start`: when the next window opens after `now`
    (None only when there are no windows)."""

    open: bool
    closes: datetime | None = None
    next_start: datetime | None = None

    @property
    def bounded(self) -> bool:
        """The spec has windows (without any, no window ever starts: always open)."""
        return self.next_start is not None

    @property
    def next_boundary(self) -> datetime | None:
        """When this state next changes: the open window closes, or the next one opens."""
        return self.closes if self.open and self.closes is not None else self.next_start


ALWAYS = WindowState(open=True)


def time_zone(name: str) -> ZoneInfo:
    """The IANA zone; ValueError (the planner's InvalidSpec) when the database has no such zone."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as err:
        raise ValueError(f"reboot.windows: unknown time zone {name!r} (IANA names)") from err


def _openings(window: RebootWindow, now: datetime) -> list[tuple[datetime, datetime]]:
    """(start, end) in UTC of each opening of `window` within `_SEARCH_DAYS` of `now`."""
    zone = time_zone(window.time_zone)
    length = parse_duration(window.duration)
    hour, minute = (int(part) for part in window.start.split(":"))
    today = now.astimezone(zone).date()
    days = set(window.days)
    result = []
    for offset in range(-_SEARCH_DAYS, _SEARCH_DAYS + 1):
        day: date = today + timedelta(days=offset)
        if _DAYS[day.weekday()] not in days:
            continue
        start = datetime(day.year, day.month, day.day, hour, minute, tzinfo=zone).astimezone(UTC)
        result.append((start, start + length))
    return result


def window_state(windows: Sequence[RebootWindow], now: datetime) -> WindowState:
    """Where `now` stands against `windows`; no windows: always open."""
    if not windows:
        return ALWAYS
    openings = sorted(o for w in windows for o in _openings(w, now))
    next_start = min((start for start, _ in openings if start > now), default=None)
    ends = [end for start, end in openings if start <= now < end]
    if not ends:
        return WindowState(open=False, next_start=next_start)
    closes = max(ends)
    for start, end in openings:  # a window opening before the open one closes extends it
        if now < start <= closes:
            closes = max(closes, end)
    return WindowState(open=True, closes=closes, next_start=next_start)
