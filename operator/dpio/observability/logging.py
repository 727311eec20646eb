"""Structured logs: one JSON object per line (`DPIO_LOG_FORMAT=json`) or readable text.

Every line carries time, level, logger and message, plus the object's identity (kind, namespace,
name) when known: kopf passes it in its records' `k8s_ref`; our own loggers pass fields with
`extra=` ("Enabled passthrough on host", host=..., the Kubernetes logging style). Other extras
follow as fields of their own.

Credentials never reach the output (docs/design.md, "vCenter access"): extras whose key names
a secret (password, token, ...) are replaced by `[REDACTED]`, and every string registered with
`protect` (the vCenter password, registered when a session is created) is scrubbed from the
finished line, whatever logger or message carried it.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import threading
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any, TextIO

FORMAT_ENV = "DPIO_LOG_FORMAT"  # text (default) | json
LEVEL_ENV = "DPIO_LOG_LEVEL"  # DEBUG | INFO (default) | WARNING | ERROR
REDACTED = "[REDACTED]"

# Extras whose key contains one of these are never printed (case-insensitive).
SENSITIVE_KEYS = ("password", "passwd", "secret", "token", "authorization", "cookie", "credential")
# Shorter strings would scrub ordinary words out of every line.
_MIN_PROTECTED_LENGTH = 4

# Attributes every LogRecord has; the rest are extras. kopf adds its own three.
_RECORD_ATTRS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message", "asctime", "taskName", "k8s_ref", "k8s_skip", "settings",
}  # fmt: skip
_IDENTITY = ("kind", "namespace", "name")
_EXTRA_IDENTITY = {"kind": "kind", "namespace": "namespace", "object": "name"}

_protected: set[str] = set()
_protected_lock = threading.Lock()


def protect(values: Iterable[str]) -> None:
    """Never print these strings (passwords read from a Secret), in any logger's output."""
    with _protected_lock:
        _protected.update(v for v in values if len(v) >= _MIN_PROTECTED_LENGTH)


def scrub(text: str) -> str:
    with _protected_lock:
        values = sorted(_protected, key=len, reverse=True)
    for value in values:
        if value in text:
            text = text.replace(value, REDACTED)
    return text


def _sensitive(key: str) -> bool:
    lowered = key.lower()
    return any(word in lowered for word in SENSITIVE_KEYS)


def identity(record: logging.LogRecord) -> dict[str, str]:
    """kind / namespace / name of the object the record is about, from kopf or our extras."""
    found: dict[str, str] = {}
    ref = getattr(record, "k8s_ref", None)
    if isinstance(ref, Mapping):
        found = {k: str(ref[k]) for k in _IDENTITY if ref.get(k)}
    # `name` is the logger's on a LogRecord, so our extras carry the object's name as `object`.
    for extra, key in _EXTRA_IDENTITY.items():
        value = record.__dict__.get(extra)
        if value:
            found.setdefault(key, str(value))
    return found


def object_ref(body: Mapping[str, Any]) -> dict[str, str]:
    """`extra=` fields naming a Kubernetes object: `logger.info("...", extra=object_ref(body))`."""
    meta = body.get("metadata") or {}
    ref = {"kind": body.get("kind"), "namespace": meta.get("namespace"), "object": meta.get("name")}
    return {k: str(v) for k, v in ref.items() if v}


def fields(record: logging.LogRecord) -> dict[str, Any]:
    """The record's extras, sensitive ones redacted (identity keys excluded)."""
    return {
        key: REDACTED if _sensitive(key) else value
        for key, value in record.__dict__.items()
        if key not in _RECORD_ATTRS and key not in _EXTRA_IDENTITY and not key.startswith("_")
    }


def _timestamp(record: logging.LogRecord) -> str:
    moment = datetime.fromtimestamp(record.created, UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, identity, extras, error."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": _timestamp(record),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        line.update(identity(record))
        for key, value in fields(record).items():
            line.setdefault(key, value)
        if record.exc_info:
            line["error"] = self.formatException(record.exc_info)
        elif record.stack_info:
            line["stack"] = self.formatStack(record.stack_info)
        return scrub(json.dumps(line, default=str, ensure_ascii=False))


class TextFormatter(logging.Formatter):
    """`time LEVEL logger [namespace/name] message key=value ...` for people at a terminal."""

    def format(self, record: logging.LogRecord) -> str:
        who = identity(record)
        ref = "/".join(who[k] for k in ("namespace", "name") if k in who)
        parts = [_timestamp(record), record.levelname, record.name]
        if ref:
            parts.append(f"[{ref}]")
        parts.append(record.getMessage())
        parts.extend(f"{k}={json.dumps(v, default=str)}" for k, v in fields(record).items())
        text = " ".join(parts)
        if record.exc_info:
            text += "\n" + self.formatException(record.exc_info)
        return scrub(text)


def formatter(fmt: str) -> logging.Formatter:
    if fmt == "json":
        return JsonFormatter()
    if fmt == "text":
        return TextFormatter()
    raise ValueError(f"{FORMAT_ENV} must be 'text' or 'json', not {fmt!r}")


def configure(
    env: Mapping[str, str] | None = None, *, verbose: bool = False, stream: TextIO | None = None
) -> logging.Handler:
    """Set up the root logger from `DPIO_LOG_FORMAT` / `DPIO_LOG_LEVEL` (`verbose`: DEBUG).

    Replaces the root's handlers, so calling it twice does not print lines twice.
    """
    env = os.environ if env is None else env
    level_name = "DEBUG" if verbose else env.get(LEVEL_ENV, "INFO").upper()
    level = logging.getLevelNamesMapping().get(level_name)
    if level is None:
        raise ValueError(f"{LEVEL_ENV} must be a logging level name, not {level_name!r}")
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(formatter(env.get(FORMAT_ENV, "text").lower()))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    # HTTP wire logs would carry request and response bodies (Secrets among them) at DEBUG.
    for noisy in ("urllib3", "kubernetes.client.rest", "asyncio"):
        logging.getLogger(noisy).setLevel(max(level, logging.INFO))
    # kopf says "Handler '...' succeeded." at INFO for every watch event of every object (our
    # handlers only feed the queue); below DEBUG that is noise, its warnings and errors stay.
    logging.getLogger("kopf.objects").setLevel(level if level <= logging.DEBUG else logging.WARNING)
    return handler
