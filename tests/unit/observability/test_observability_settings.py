"""The operator's observability settings from the environment, checked before kopf starts."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from dpio.handlers import lifecycle, main
from dpio.observability.tls import CertFiles


@pytest.mark.parametrize(
    ("env", "port"),
    [
        ({}, 9090),
        ({"DPIO_METRICS_PORT": ""}, 9090),
        ({"DPIO_METRICS_PORT": "0"}, 0),
        ({"DPIO_METRICS_PORT": " 9191 "}, 9191),
    ],
)
def test_metrics_port(env: dict[str, str], port: int) -> None:
    assert lifecycle.metrics_port(env) == port


@pytest.mark.parametrize("raw", ["http", "-1", "65536", "90.5"])
def test_metrics_port_rejects(raw: str) -> None:
    with pytest.raises(ValueError, match="DPIO_METRICS_PORT"):
        lifecycle.metrics_port({"DPIO_METRICS_PORT": raw})


@pytest.mark.parametrize(
    ("env", "tls"),
    [
        ({}, None),
        ({"DPIO_METRICS_SECURE": "false", "DPIO_METRICS_CERT_FILE": "/c"}, None),
        (
            {
                "DPIO_METRICS_SECURE": "true",
                "DPIO_METRICS_CERT_FILE": "/etc/tls/tls.crt",
                "DPIO_METRICS_KEY_FILE": "/etc/tls/tls.key",
            },
            CertFiles("/etc/tls/tls.crt", "/etc/tls/tls.key"),
        ),
        (
            {
                "DPIO_METRICS_SECURE": " True ",
                "DPIO_METRICS_CERT_FILE": "c",
                "DPIO_METRICS_KEY_FILE": "k",
            },
            CertFiles("c", "k"),
        ),
    ],
)
def test_metrics_settings(env: dict[str, str], tls: CertFiles | None) -> None:
    assert lifecycle.MetricsSettings.from_env(env) == lifecycle.MetricsSettings(9090, tls)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"DPIO_METRICS_SECURE": "yes"}, "DPIO_METRICS_SECURE must be true or false"),
        ({"DPIO_METRICS_SECURE": "true"}, "needs DPIO_METRICS_CERT_FILE and DPIO_METRICS_KEY_FILE"),
        ({"DPIO_METRICS_SECURE": "true", "DPIO_METRICS_CERT_FILE": "c"}, "DPIO_METRICS_KEY_FILE"),
        ({"DPIO_METRICS_PORT": "x", "DPIO_METRICS_SECURE": "true"}, "DPIO_METRICS_PORT"),
    ],
)
def test_metrics_settings_reject(env: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        lifecycle.MetricsSettings.from_env(env)


@pytest.fixture
def root() -> Iterator[None]:
    logger = logging.getLogger()
    handlers, level = list(logger.handlers), logger.level
    yield
    logger.handlers[:] = handlers
    logger.setLevel(level)


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("DPIO_LOG_FORMAT", "xml"),
        ("DPIO_LOG_LEVEL", "CHATTY"),
        ("DPIO_METRICS_PORT", "none"),
        ("DPIO_METRICS_SECURE", "true"),  # without its certificate files
        ("DPIO_DRY_RUN", "yes"),  # a typo must not turn vCenter writes on
    ],
)
def test_main_stops_with_a_usage_error_before_kopf_starts(
    root: None,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    variable: str,
    value: str,
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(SystemExit) as stopped:
        main.main(["--standalone"])
    assert stopped.value.code == 2
    assert variable in capsys.readouterr().err
