"""Reading `-f` arguments the way `kubectl apply -f` does: files, directories, `-` for stdin,
multi-document YAML (or JSON) and `kind: List`; only dpio.io objects are planned."""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import yaml

from dpio.api.common import API_VERSION

POLICY_KIND = "HostPassthroughPolicy"
ASSIGNMENT_KIND = "VMDeviceAssignment"
_SUFFIXES = (".yaml", ".yml", ".json")


class ManifestError(ValueError):
    """A file can't be read or parsed; the message names the file."""


@dataclass(frozen=True, slots=True)
class Manifest:
    """One object from a file, with where it came from (for messages)."""

    source: str
    body: dict[str, Any]

    @property
    def kind(self) -> str:
        return str(self.body.get("kind", ""))

    @property
    def name(self) -> str:
        meta = self.body.get("metadata") or {}
        return str(meta.get("name", "")) if isinstance(meta, dict) else ""

    @property
    def is_dpio(self) -> bool:
        return self.body.get("apiVersion") == API_VERSION and self.kind in (
            POLICY_KIND,
            ASSIGNMENT_KIND,
        )

    def __str__(self) -> str:
        return f"{self.kind}/{self.name}"


def _files(path: Path) -> list[Path]:
    if path.is_dir():  # like kubectl -f DIR: the directory's manifests, in name order
        return sorted(p for p in path.iterdir() if p.is_file() and p.suffix in _SUFFIXES)
    return [path]


def _objects(doc: Any) -> Iterator[dict[str, Any]]:
    if not isinstance(doc, dict):
        return
    if doc.get("kind") == "List" or str(doc.get("kind", "")).endswith("List"):
        for item in doc.get("items") or []:
            yield from _objects(item)
    else:
        yield doc


def parse(text: str, source: str) -> list[Manifest]:
    try:
        docs = list(yaml.safe_load_all(text))
    except yaml.YAMLError as err:
        raise ManifestError(f"{source}: not YAML: {err}") from err
    return [Manifest(source, obj) for doc in docs for obj in _objects(doc)]


def load(paths: Sequence[str], stdin: TextIO | None = None) -> list[Manifest]:
    """Every object in `paths` (a `-` reads stdin), in order."""
    found: list[Manifest] = []
    for arg in paths:
        if arg == "-":
            found += parse((stdin or sys.stdin).read(), "<stdin>")
            continue
        path = Path(arg)
        if not path.exists():
            raise ManifestError(f"{arg}: no such file or directory")
        for file in _files(path):
            try:
                found += parse(file.read_text(), str(file))
            except OSError as err:
                raise ManifestError(f"{file}: {err.strerror}") from err
    return found


def of_kind(manifests: Iterable[Manifest], kind: str) -> list[Manifest]:
    return [m for m in manifests if m.is_dpio and m.kind == kind]
