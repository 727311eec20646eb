"""Where `dpio` finds vCenter: flags, a Secret, a policy's secretRef, the environment; in that
order, with the operator's own credential validation."""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from pathlib import Path

import pytest

from dpio.cli.connection import UsageError, add_vcenter_flags, parse_secret_name, resolve

PEM = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
SECRET_DATA = {"server": "vc.lab:8443", "username": "svc", "password": "s3cret", "insecure": "true"}


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_vcenter_flags(parser)
    return parser.parse_args(argv)


class Secrets:
    """A fake Secret store that records what was read."""

    def __init__(self, data: Mapping[str, str] = SECRET_DATA) -> None:
        self.data = dict(data)
        self.read: list[str] = []

    def __call__(self, namespace: str, name: str) -> Mapping[str, str]:
        self.read.append(f"{namespace}/{name}")
        return self.data


@pytest.fixture
def sandbox_env(tmp_path: Path) -> dict[str, str]:
    ca = tmp_path / "ca.crt"
    ca.write_text(PEM)
    return {
        "VSPHERE_URL": "https://127.0.0.1:9443/sdk",
        "VSPHERE_USER": "administrator@vsphere.local",
        "VSPHERE_PASSWORD": "sandbox",
        "VSPHERE_CA_FILE": str(ca),
    }


@pytest.mark.parametrize(
    ("argv", "env_extra", "secret_ref", "source", "server", "read"),
    [
        # .sandbox/env alone: the simulator, trusted through its CA file.
        ((), {}, None, "$VSPHERE_URL", "127.0.0.1:9443", []),
        # Flags beat the environment; the password comes from the variable --password-env names.
        (
            ("--server", "vc2.lab", "--user", "u", "--password-env", "PW", "--insecure"),
            {"PW": "x"},
            None,
            "flags",
            "vc2.lab:443",
            [],
        ),
        (
            ("--vcenter-secret", "ops/vc-prod"),
            {},
            None,
            "Secret ops/vc-prod",
            "vc.lab:8443",
            ["ops/vc-prod"],
        ),
        # A bare name is in the operator's namespace, like a policy's secretRef.
        (
            ("--vcenter-secret", "vc-prod"),
            {"DPIO_NAMESPACE": "ops"},
            None,
            "Secret ops/vc-prod",
            "vc.lab:8443",
            ["ops/vc-prod"],
        ),
        # The policy names its vCenter: that Secret, not the environment's simulator.
        ((), {}, "vc-gpu", "Secret dpio-system/vc-gpu", "vc.lab:8443", ["dpio-system/vc-gpu"]),
        # ...unless the command line names a server explicitly.
        (("--server", "vc3.lab", "--insecure"), {}, "vc-gpu", "flags", "vc3.lab:443", []),
    ],
)
def test_resolve_order(
    sandbox_env: dict[str, str],
    argv: tuple[str, ...],
    env_extra: dict[str, str],
    secret_ref: str | None,
    source: str,
    server: str,
    read: list[str],
) -> None:
    secrets = Secrets()

    found, credentials = resolve(parse(*argv), {**sandbox_env, **env_extra}, secrets, secret_ref)

    assert (found, credentials.server, secrets.read) == (source, server, read)


def test_environment_trusts_its_ca_file(sandbox_env: dict[str, str]) -> None:
    _, credentials = resolve(parse(), sandbox_env, Secrets())

    assert (credentials.ca_bundle, credentials.insecure, credentials.path) == (
        PEM.strip(),
        False,
        "/sdk",
    )


@pytest.mark.parametrize(
    ("env", "default_secret"),
    [
        ({}, "dpio-system/vcenter"),
        ({"DPIO_NAMESPACE": "kube-dpio", "DPIO_VCENTER_SECRET": "vc"}, "kube-dpio/vc"),
    ],
)
def test_without_url_the_operators_secret_is_used(env: dict[str, str], default_secret: str) -> None:
    secrets = Secrets()

    source, _ = resolve(parse(), env, secrets)

    assert (source, secrets.read) == (f"Secret {default_secret}", [default_secret])


@pytest.mark.parametrize(
    ("argv", "env", "data", "message"),
    [
        (("--server", "vc.lab", "--insecure"), {}, SECRET_DATA, "set the vCenter password in"),
        (("--vcenter-secret", "a/b", "--server", "vc"), {}, SECRET_DATA, "not both"),
        (("--vcenter-secret", "a/b/c"), {}, SECRET_DATA, "NAMESPACE/NAME"),
        # The Secret's own problems name the Secret and the key, never a value.
        (
            ("--vcenter-secret", "ops/vc"),
            {},
            {"server": "vc", "username": "u"},
            "Secret ops/vc: Secret key 'password' is missing",
        ),
        (
            ("--server", "vc.lab", "--ca-file", "/nonexistent/ca.pem"),
            {"VSPHERE_PASSWORD": "p"},
            SECRET_DATA,
            "--ca-file /nonexistent/ca.pem",
        ),
        # No trust chosen for a server given on the command line: refused, as in a Secret.
        (
            ("--server", "vc.lab", "--user", "u"),
            {"VSPHERE_PASSWORD": "p"},
            SECRET_DATA,
            "--ca-file",
        ),
        # Messages about flags name the flag, not a Secret key.
        (
            ("--server", "vc.lab", "--insecure"),
            {"VSPHERE_PASSWORD": "p"},
            SECRET_DATA,
            "flags: --user .* is missing",
        ),
    ],
)
def test_resolve_errors(
    argv: tuple[str, ...], env: dict[str, str], data: dict[str, str], message: str
) -> None:
    with pytest.raises(UsageError, match=message) as caught:
        resolve(parse(*argv), env, Secrets(data))

    assert "s3cret" not in str(caught.value)


@pytest.mark.parametrize(
    ("text", "expected"),
    [("ns/name", "ns/name"), ("name", "dflt/name"), ("/name", "dflt/name")],
)
def test_parse_secret_name(text: str, expected: str) -> None:
    assert str(parse_secret_name(text, "dflt")) == expected
