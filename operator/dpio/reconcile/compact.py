"""How the object caches keep an object: small, read-only, decoded on demand.

At 5,000 policies and 5,000 assignments the caches' bodies were the operator's largest holding:
58.8 MiB with their strings interned, 5.9 KB per object (docs/benchmarks.md, "What holds it").
Each reconcile reads one object, and the walks over every object read its metadata; so
`CompactBody` keeps the metadata as a dict (its strings interned: names, finalizers, labels and
timestamps repeat across objects) and every other top-level field (spec, status) as compact
JSON, decoded on each access: 2.6 KB per object measured, and ~15 µs to decode a status.
That JSON is deflated against a preset dictionary of the words our objects repeat (field names,
condition types, reasons: dpio.api.vocabulary): an assignment's status of 2.2 KB is kept in
~510 bytes (zlib alone: ~740), for ~25 µs when it is stored and ~6 µs more per read (finding 37).

A decoded field is a fresh copy on every access: a caller may change what it got without
changing the cache, and two accesses cost two decodes (read a field once per use).
"""

from __future__ import annotations

import json
import sys
import zlib
from collections.abc import Iterator, Mapping
from typing import Any

from dpio.api.vocabulary import dictionary

#: Longer strings (a long message) are kept as they came rather than interned.
_INTERN_UP_TO = 256
_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, check_circular=False)
_DECODE = json.JSONDecoder().decode
#: Raw deflate (no header or checksum: the bytes never leave the process) in an 8 KiB window:
#: the dictionary (~3.3 KB) stays in reach of a status's first ~5 KB; a 32 KiB window gains
#: nothing on our objects and costs more to set up on every store. memLevel 4: ~40 KB of
#: state for each store rather than ~160 KB at the default 8, and the same bytes out on our
#: statuses (measured on a benchmark's: 510 and 392 bytes either way).
_WBITS = -13
_LEVEL = 6
_MEM_LEVEL = 4


def _deflate(data: bytes) -> bytes:
    packer = zlib.compressobj(
        _LEVEL, zlib.DEFLATED, _WBITS, _MEM_LEVEL, zlib.Z_DEFAULT_STRATEGY, dictionary()
    )
    return packer.compress(data) + packer.flush()


def _inflate(data: bytes) -> bytes:
    unpacker = zlib.decompressobj(_WBITS, dictionary())
    return unpacker.decompress(data) + unpacker.flush()


def compact(value: Any) -> Any:
    """A deep copy of a JSON value whose strings are interned: every object repeats the same
    keys, condition types, reasons and timestamps, and each decoded watch event brings its own
    copies of them (finding 33)."""
    if isinstance(value, Mapping):
        return {_shared(k): compact(v) for k, v in value.items()}
    if isinstance(value, list):
        return [compact(v) for v in value]
    return _shared(value)


def _shared(value: Any) -> Any:
    if type(value) is str and len(value) <= _INTERN_UP_TO:
        return sys.intern(value)
    return value


def _packed(value: Any) -> Any:
    """Containers as deflated JSON bytes; scalars (apiVersion, kind) as themselves, strings
    interned. No JSON value is `bytes`, so `_unpacked` tells them apart. The same value always
    packs into the same bytes, so packed values compare as their JSON does."""
    if isinstance(value, Mapping | list):
        # surrogatepass: a lone surrogate (which the API server never sends) round-trips
        return _deflate(_ENCODER.encode(value).encode("utf-8", "surrogatepass"))
    return _shared(value)


def _unpacked(value: Any) -> Any:
    if type(value) is bytes:
        return _DECODE(_inflate(value).decode("utf-8", "surrogatepass"))
    return value


class CompactBody(Mapping[str, Any]):
    """An object as the cache keeps it, read as the mapping it came as (without
    `metadata.managedFields`, which no reconcile reads)."""

    __slots__ = ("_fields", "_metadata")

    def __init__(self, body: Mapping[str, Any]) -> None:
        raw_meta = body.get("metadata")
        meta = raw_meta if isinstance(raw_meta, Mapping) else {}
        self._metadata: dict[str, Any] = compact(
            {k: v for k, v in meta.items() if k != "managedFields"}
        )
        #: field, packed value, field, packed value, ... in the body's order ("metadata" left
        #: out): one flat tuple is 120 bytes where a tuple of pairs was 344.
        self._fields: tuple[Any, ...] = tuple(
            item for k, v in body.items() if k != "metadata" for item in (_shared(k), _packed(v))
        )

    def _pairs(self) -> Iterator[tuple[str, Any]]:
        return zip(self._fields[::2], self._fields[1::2], strict=True)

    @property
    def metadata(self) -> Mapping[str, Any]:
        return self._metadata

    def packed(self, field: str) -> Any:
        """A field as kept (deflated JSON for a container), to compare without decoding."""
        return next((v for k, v in self._pairs() if k == field), None)

    def fields_but(self, skip: frozenset[str]) -> tuple[tuple[str, Any], ...]:
        """The packed fields other than `skip` (and metadata), to compare without decoding."""
        return tuple((k, v) for k, v in self._pairs() if k not in skip)

    def __getitem__(self, key: str) -> Any:
        if key == "metadata":
            return self._metadata
        for name, value in self._pairs():
            if name == key:
                return _unpacked(value)
        raise KeyError(key)

    def __iter__(self) -> Iterator[str]:
        yield "metadata"
        yield from self._fields[::2]

    def __len__(self) -> int:
        return 1 + len(self._fields) // 2

    def __repr__(self) -> str:
        return f"CompactBody({dict(self)!r})"
