"""Table cells and layout: what `awk` and a reader of the terminal rely on."""

from __future__ import annotations

import json

import pytest
import yaml

from dpio.api.policy import DeviceState
from dpio.cli.output import Format, cell, dump, table


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (None, "-"),
        ("", "-"),
        ((), "-"),
        ([], "-"),
        (True, "yes"),
        (False, "no"),
        (0, "0"),
        (("0000:5e:00.0", "0000:5e:00.1"), "0000:5e:00.0,0000:5e:00.1"),
        (DeviceState.PENDING_REBOOT, "PendingReboot"),
    ],
)
def test_cell(value: object, text: str) -> None:
    assert cell(value) == text


def test_table_aligns_columns_and_does_not_pad_the_last() -> None:
    text = table(("host", "state"), [("esx-gpu-01", "Active"), ("esx2", None)])

    assert text.splitlines() == [
        "HOST         STATE",
        "esx-gpu-01   Active",
        "esx2         -",
    ]


def test_table_cells_never_contain_the_column_gap() -> None:
    # An empty value in the middle still leaves a field `awk` can count.
    text = table(("a", "b", "c"), [("1", "", "3")])

    assert text.splitlines()[1].split() == ["1", "-", "3"]


@pytest.mark.parametrize(
    ("fmt", "load"), [(Format.JSON, json.loads), (Format.YAML, yaml.safe_load)]
)
def test_dump_round_trips_and_keeps_key_order(fmt: Format, load: object) -> None:
    data = {"zeta": 1, "alpha": [True, None]}

    text = dump(data, fmt)

    assert load(text) == data  # type: ignore[operator]
    assert text.index("zeta") < text.index("alpha")
