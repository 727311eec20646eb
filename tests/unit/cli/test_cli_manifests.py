"""`-f` arguments read like `kubectl apply -f`."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from dpio.cli.manifests import ManifestError, load, of_kind

POLICY = "apiVersion: dpio.io/v1alpha1\nkind: HostPassthroughPolicy\nmetadata: {name: %s}\n"
VMDA = "apiVersion: dpio.io/v1alpha1\nkind: VMDeviceAssignment\nmetadata: {name: %s}\n"


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        ({"a.yaml": POLICY % "one"}, ["HostPassthroughPolicy/one"]),
        (
            {"a.yaml": POLICY % "one" + "---\n" + VMDA % "two"},
            ["HostPassthroughPolicy/one", "VMDeviceAssignment/two"],
        ),
        # A directory: its manifests in name order; other files ignored.
        (
            {
                "b.yml": POLICY % "b",
                "a.json": '{"apiVersion": "dpio.io/v1alpha1", '
                '"kind": "HostPassthroughPolicy", "metadata": {"name": "a"}}',
                "README.md": "# x",
            },
            ["HostPassthroughPolicy/a", "HostPassthroughPolicy/b"],
        ),
        # kind: List and empty documents.
        (
            {"l.yaml": "---\nkind: List\nitems:\n- " + (POLICY % "x").replace("\n", "\n  ")},
            ["HostPassthroughPolicy/x"],
        ),
    ],
)
def test_load(tmp_path: Path, files: dict[str, str], expected: list[str]) -> None:
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    target = tmp_path / next(iter(files)) if len(files) == 1 else tmp_path

    assert [str(m) for m in load([str(target)])] == expected


def test_stdin_and_sources() -> None:
    found = load(["-"], stdin=io.StringIO(POLICY % "p"))

    assert [(m.source, m.name) for m in found] == [("<stdin>", "p")]


def test_only_dpio_objects_are_planned(tmp_path: Path) -> None:
    other = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n"
    wrong_group = "apiVersion: example.com/v1\nkind: HostPassthroughPolicy\nmetadata: {name: w}\n"
    (tmp_path / "m.yaml").write_text("---\n".join([other, wrong_group, POLICY % "p"]))

    found = load([str(tmp_path / "m.yaml")])

    assert [m.name for m in of_kind(found, "HostPassthroughPolicy")] == ["p"]


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("missing.yaml", None, "no such file"),
        ("bad.yaml", "a: [unclosed", "not YAML"),
    ],
)
def test_errors_name_the_file(tmp_path: Path, name: str, text: str | None, message: str) -> None:
    if text is not None:
        (tmp_path / name).write_text(text)

    with pytest.raises(ManifestError, match=message) as caught:
        load([str(tmp_path / name)])

    assert name in str(caught.value)
