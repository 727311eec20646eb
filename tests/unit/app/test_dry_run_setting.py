"""The operator-wide dry-run: `--dry-run` or DPIO_DRY_RUN, read strictly, handed to both
reconcilers (docs/design.md#suspend-and-dry-run)."""

from __future__ import annotations

import logging

import pytest

from dpio.app.runtime import DRY_RUN_ENV, Config, dry_run_from_env


@pytest.mark.parametrize(
    ("value", "expected"),
    [(None, False), ("false", False), ("true", True), ("TRUE", True), (" true ", True)],
)
def test_dry_run_is_read_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, value: str | None, expected: bool
) -> None:
    if value is None:
        monkeypatch.delenv(DRY_RUN_ENV, raising=False)
    else:
        monkeypatch.setenv(DRY_RUN_ENV, value)
    assert dry_run_from_env() is expected
    assert Config.from_env().dry_run is expected


@pytest.mark.parametrize("value", ["yes", "1", "on", "ture", ""])
def test_anything_but_true_or_false_is_refused(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv(DRY_RUN_ENV, value)
    with pytest.raises(ValueError, match=DRY_RUN_ENV):
        dry_run_from_env()


def test_the_flag_sets_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    from dpio.handlers import main  # noqa: PLC0415 - imports kopf and the handlers

    root = logging.getLogger()  # main configures logging: put it back afterwards
    handlers, level = list(root.handlers), root.level

    monkeypatch.delenv(DRY_RUN_ENV, raising=False)
    started: list[bool] = []
    monkeypatch.setattr(main.kopf, "run", lambda **_: started.append(dry_run_from_env()))
    try:
        main.main(["--standalone", "--dry-run"])
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
    assert started == [True]
