"""Log lines: one JSON object per line with identity and extras; secrets never printed."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from dpio.app.wiring import VCenters
from dpio.observability import logging as logs
from dpio.vsphere.errors import VSphereError
from dpio.vsphere.session import SessionCache

PASSWORD = "Sup3r-s3cret-Pw!"


@pytest.fixture
def root() -> Iterator[logging.Logger]:
    """The root logger restored after `configure` replaced its handlers and level."""
    logger = logging.getLogger()
    handlers, level = list(logger.handlers), logger.level
    others = {
        n: logging.getLogger(n).level
        for n in ("urllib3", "kubernetes.client.rest", "asyncio", "kopf.objects")
    }
    yield logger
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
    for handler in handlers:
        logger.addHandler(handler)
    logger.setLevel(level)
    for name, old in others.items():
        logging.getLogger(name).setLevel(old)


def _record(msg: str = "Enabled passthrough on host", **extra: Any) -> logging.LogRecord:
    logger = logging.getLogger("dpio.test")
    return logger.makeRecord(logger.name, logging.INFO, __file__, 1, msg, (), None, extra=extra)


KOPF_REF = {
    "apiVersion": "dpio.io/v1alpha1",
    "kind": "VMDeviceAssignment",
    "name": "trainer-gpu",
    "uid": "u-1",
    "namespace": "ml-team",
}


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        pytest.param({}, {}, id="no-identity"),
        pytest.param(
            {"k8s_ref": KOPF_REF, "k8s_skip": False},
            {"kind": "VMDeviceAssignment", "namespace": "ml-team", "name": "trainer-gpu"},
            id="kopf-object-logger",
        ),
        pytest.param(
            logs.object_ref({"kind": "HostPassthroughPolicy", "metadata": {"name": "gpu-hosts"}}),
            {"kind": "HostPassthroughPolicy", "name": "gpu-hosts"},
            id="our-extras-cluster-scoped",
        ),
        pytest.param(
            {"host": "host-12", "devices": ["0000:3b:00.0"]},
            {"host": "host-12", "devices": ["0000:3b:00.0"]},
            id="plain-extras",
        ),
        pytest.param(
            {"password": PASSWORD, "vcToken": "abc", "username": "admin"},
            {"password": "[REDACTED]", "vcToken": "[REDACTED]", "username": "admin"},
            id="sensitive-keys",
        ),
    ],
)
def test_json_line_shape(extra: dict[str, Any], expected: dict[str, Any]) -> None:
    line = logs.JsonFormatter().format(_record(**extra))
    assert "\n" not in line
    parsed = json.loads(line)
    assert set(parsed) == {"time", "level", "logger", "message", *expected}
    assert parsed["time"].endswith("Z")
    assert (parsed["level"], parsed["logger"]) == ("INFO", "dpio.test")
    assert parsed["message"] == "Enabled passthrough on host"
    assert {k: parsed[k] for k in expected} == expected
    assert PASSWORD not in line


def test_json_line_carries_the_exception_on_one_line() -> None:
    try:
        raise VSphereError("vCenter said no")
    except VSphereError:
        record = _record("Reconcile failed unexpectedly")
        record.exc_info = sys.exc_info()
    line = logs.JsonFormatter().format(record)
    assert "\n" not in line
    assert "VSphereError: vCenter said no" in json.loads(line)["error"]


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ({}, "INFO dpio.test Enabled passthrough on host"),
        ({"k8s_ref": KOPF_REF}, "INFO dpio.test [ml-team/trainer-gpu] Enabled passthrough on host"),
        ({"host": "host-12"}, 'Enabled passthrough on host host="host-12"'),
        ({"token": "abc"}, 'Enabled passthrough on host token="[REDACTED]"'),
    ],
)
def test_text_line(extra: dict[str, Any], expected: str) -> None:
    assert expected in logs.TextFormatter().format(_record(**extra))


@pytest.mark.parametrize("fmt", ["json", "text"])
def test_protected_values_are_scrubbed_from_message_and_fields(fmt: str) -> None:
    logs.protect([PASSWORD, "ab"])  # too short to scrub: it would eat ordinary words
    record = _record("Secret data: %s", detail=f"password={PASSWORD}")
    record.args = ({"password": PASSWORD},)
    line = logs.formatter(fmt).format(record)
    assert PASSWORD not in line
    assert line.count(logs.REDACTED) >= 2
    assert "ab" in logs.scrub("ab")


@pytest.mark.parametrize(
    ("env", "verbose", "formatter", "level", "kopf_objects"),
    [
        ({}, False, logs.TextFormatter, logging.INFO, logging.WARNING),
        ({"DPIO_LOG_FORMAT": "json"}, False, logs.JsonFormatter, logging.INFO, logging.WARNING),
        (
            {"DPIO_LOG_FORMAT": "JSON", "DPIO_LOG_LEVEL": "warning"},
            False,
            logs.JsonFormatter,
            logging.WARNING,
            logging.WARNING,
        ),
        ({"DPIO_LOG_LEVEL": "ERROR"}, True, logs.TextFormatter, logging.DEBUG, logging.DEBUG),
    ],
)
def test_configure_from_environment(
    root: logging.Logger,
    env: dict[str, str],
    verbose: bool,
    formatter: type,
    level: int,
    kopf_objects: int,
) -> None:
    logs.configure(env, verbose=verbose)
    handler = logs.configure(env, verbose=verbose)  # twice: still one handler
    assert root.handlers == [handler]
    assert isinstance(handler.formatter, formatter)
    assert root.level == level
    assert logging.getLogger("urllib3").level >= logging.INFO
    assert logging.getLogger("kopf.objects").level == kopf_objects


@pytest.mark.parametrize(
    "env", [{"DPIO_LOG_FORMAT": "yaml"}, {"DPIO_LOG_LEVEL": "LOUD"}], ids=["format", "level"]
)
def test_configure_rejects_unknown_values(root: logging.Logger, env: dict[str, str]) -> None:
    with pytest.raises(ValueError, match="DPIO_LOG_"):
        logs.configure(env)


class FakeKube:
    async def read_secret(self, namespace: str, name: str) -> dict[str, str]:
        logging.getLogger("dpio.kube.client").debug("Read Secret", extra={"object": name})
        return {
            "server": "127.0.0.1:9",
            "username": "admin",
            "password": PASSWORD,
            "insecure": "true",
        }


def test_secret_never_logged_at_debug_on_the_credentials_path(root: logging.Logger) -> None:
    """Secret read -> credentials -> session -> (refused) login, all at DEBUG, JSON: the password
    appears nowhere, even where code logs it by mistake after the session registered it."""
    out = io.StringIO()
    logs.configure({"DPIO_LOG_FORMAT": "json", "DPIO_LOG_LEVEL": "DEBUG"}, stream=out)
    sessions = SessionCache(timeout=2)
    vcenters = VCenters(FakeKube(), sessions, "dpio-system", "vc")  # type: ignore[arg-type]
    try:
        credentials = asyncio.run(vcenters.credentials("vc", "Secret dpio-system/vc"))
        client = sessions.get(credentials)
        with pytest.raises(VSphereError):
            client.call(lambda conn: conn)  # nothing listens on port 9: login fails
        logging.getLogger("dpio.careless").debug("password was %s", credentials.password)
    finally:
        sessions.close_all()
    text = out.getvalue()
    lines = [json.loads(line) for line in text.splitlines()]
    assert any(line["logger"] == "dpio.careless" for line in lines)
    assert PASSWORD not in text
