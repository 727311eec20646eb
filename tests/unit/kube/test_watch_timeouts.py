"""kopf's watch and request timeouts: a silent watch is given up after a bounded time."""

from __future__ import annotations

import kopf
import pytest

from dpio.handlers import main, watching


def test_defaults_bound_every_wait_on_the_api_server() -> None:
    settings = kopf.OperatorSettings()
    watching.WatchTimeouts.from_env({}).apply(settings)
    assert settings.watching.inactivity_timeout == 70
    assert settings.watching.server_timeout == 300
    assert settings.watching.connect_timeout == 10
    assert settings.networking.request_timeout == 60
    assert settings.networking.connect_timeout == 10


def test_the_inactivity_timeout_comes_from_the_environment() -> None:
    settings = kopf.OperatorSettings()
    watching.WatchTimeouts.from_env({"DPIO_WATCH_INACTIVITY_SECONDS": " 7.5 "}).apply(settings)
    assert settings.watching.inactivity_timeout == 7.5


@pytest.mark.parametrize("raw", ["soon", "0", "-3", "nan"])
def test_a_bad_inactivity_timeout_is_refused(raw: str) -> None:
    with pytest.raises(ValueError, match="DPIO_WATCH_INACTIVITY_SECONDS"):
        watching.WatchTimeouts.from_env({"DPIO_WATCH_INACTIVITY_SECONDS": raw})


def test_the_operator_refuses_to_start_with_a_bad_value(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DPIO_WATCH_INACTIVITY_SECONDS", "soon")
    with pytest.raises(SystemExit):
        main.main(["--standalone"])
    assert "DPIO_WATCH_INACTIVITY_SECONDS" in capsys.readouterr().err
