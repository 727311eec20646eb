"""kubeconfig `exec` credential plugins (client.authentication.k8s.io ExecCredential): what a
kubeconfig user's `exec` says, and running it for a token, as kubectl does. A plugin that returns
a client certificate instead is refused: the operator's connections are built once.
"""

from __future__ import annotations

import datetime
import json
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dpio.kube.times import parse_time

#: How long an exec plugin may take.
EXEC_TIMEOUT = 30.0
EXEC_API_VERSIONS = (
    "client.authentication.k8s.io/v1",
    "client.authentication.k8s.io/v1beta1",
)


class ConfigError(ValueError):
    """No usable configuration, or one that asks for something not supported (credentials.py
    raises it too, and exports it: defined here so this module needs nothing from there)."""


@dataclass(frozen=True)
class ExecPlugin:
    """A kubeconfig user's `exec` (client-go's ExecConfig), run to get a bearer token."""

    command: str
    args: tuple[str, ...] = ()
    env: tuple[tuple[str, str], ...] = ()
    api_version: str = EXEC_API_VERSIONS[0]
    #: The kubeconfig's directory: a relative command is relative to it, as in client-go.
    base: str = ""


def run_exec_plugin(plugin: ExecPlugin) -> tuple[str, datetime.datetime | None]:
    """Run the plugin; its ExecCredential's token and expiry. Raises ConfigError."""
    command = plugin.command
    if os.sep in command and not os.path.isabs(command) and plugin.base:
        command = os.path.join(plugin.base, command)
    info = {
        "apiVersion": plugin.api_version,
        "kind": "ExecCredential",
        "spec": {"interactive": False},
    }
    env = {**os.environ, **dict(plugin.env), "KUBERNETES_EXEC_INFO": json.dumps(info)}
    try:
        done = subprocess.run(
            [command, *plugin.args],
            env=env,
            capture_output=True,
            stdin=subprocess.DEVNULL,
            timeout=EXEC_TIMEOUT,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as err:
        raise ConfigError(f"exec credential plugin {plugin.command!r}: {err}") from err
    if done.returncode != 0:
        stderr = done.stderr.decode(errors="replace").strip()[-500:]
        raise ConfigError(
            f"exec credential plugin {plugin.command!r} exited {done.returncode}: {stderr}"
        )
    try:
        status = json.loads(done.stdout)["status"]
        token = str(status.get("token") or "")
    except (ValueError, KeyError, TypeError, AttributeError) as err:
        raise ConfigError(
            f"exec credential plugin {plugin.command!r} did not print an ExecCredential"
        ) from err
    if not token:
        which = "a client certificate" if status.get("clientCertificateData") else "no token"
        raise ConfigError(
            f"exec credential plugin {plugin.command!r} returned {which}: only tokens are supported"
        )
    return token, parse_time(status.get("expirationTimestamp"))


def parse_exec(spec: Any, base: Path, where: str) -> ExecPlugin | None:
    if not spec:
        return None
    if not isinstance(spec, dict) or not spec.get("command"):
        raise ConfigError(f"{where}: the user's exec names no command")
    api_version = str(spec.get("apiVersion") or EXEC_API_VERSIONS[0])
    if api_version not in EXEC_API_VERSIONS:
        raise ConfigError(f"{where}: exec apiVersion {api_version!r} is not supported")
    env = tuple(
        (str(e["name"]), str(e.get("value", "")))
        for e in spec.get("env") or ()
        if isinstance(e, dict) and e.get("name")
    )
    return ExecPlugin(
        command=str(spec["command"]),
        args=tuple(str(a) for a in spec.get("args") or ()),
        env=env,
        api_version=api_version,
        base=str(base),
    )
