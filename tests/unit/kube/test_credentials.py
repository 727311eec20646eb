"""Kubeconfig and in-cluster credentials (`dpio.kube.credentials`): what kubectl would use, and a
clear refusal for what we don't support."""

from __future__ import annotations

import base64
import datetime
import os
import stat
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from dpio.kube import credentials
from dpio.kube.credentials import ConfigError, Credentials


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def kubeconfig(
    path: Path,
    user: dict[str, Any],
    cluster: dict[str, Any] | None = None,
    *,
    context: str = "lab",
    namespace: str | None = None,
) -> Path:
    ctx: dict[str, Any] = {"cluster": "c", "user": "u"}
    if namespace:
        ctx["namespace"] = namespace
    doc = {
        "apiVersion": "v1",
        "kind": "Config",
        "current-context": context,
        "clusters": [{"name": "c", "cluster": cluster or {"server": "https://api.lab:6443"}}],
        "users": [{"name": "u", "user": user}],
        "contexts": [{"name": context, "context": ctx}],
    }
    path.write_text(yaml.safe_dump(doc))
    return path


def test_a_token_kubeconfig_with_inline_ca(tmp_path: Path) -> None:
    cluster = {"server": "https://api.lab:6443/", "certificate-authority-data": b64(b"PEM")}
    path = kubeconfig(tmp_path / "config", {"token": "abc"}, cluster, namespace="ops")
    creds = credentials.from_kubeconfig([path])
    assert creds.server == "https://api.lab:6443"
    assert creds.ca_data == b"PEM"
    assert creds.ca_file is None
    assert creds.authorization() == "Bearer abc"
    assert creds.namespace == "ops"
    assert "context lab" in creds.source


def test_relative_files_are_relative_to_the_kubeconfig(tmp_path: Path) -> None:
    user = {"client-certificate": "certs/me.crt", "client-key": "/abs/me.key"}
    cluster = {"server": "https://api.lab:6443", "certificate-authority": "ca.crt"}
    creds = credentials.from_kubeconfig([kubeconfig(tmp_path / "config", user, cluster)])
    assert creds.ca_file == str(tmp_path / "ca.crt")
    assert creds.cert_file == str(tmp_path / "certs/me.crt")
    assert creds.key_file == "/abs/me.key"
    assert creds.authorization() is None


def test_several_files_merge_and_the_first_to_name_an_entry_wins(tmp_path: Path) -> None:
    first = kubeconfig(tmp_path / "a", {"token": "first"}, context="lab")
    second = kubeconfig(tmp_path / "b", {"token": "second"}, context="other")
    env = {"KUBECONFIG": f"{first}{os.pathsep}{tmp_path / 'missing'}{os.pathsep}{second}"}
    assert credentials.load(env=env, service_account=tmp_path / "none").authorization() == (
        "Bearer first"
    )
    other = credentials.from_kubeconfig(credentials.kubeconfig_paths(env), context="other")
    assert other.authorization() == "Bearer first"  # user "u" was named by the first file


@pytest.mark.parametrize(
    ("user", "cluster", "message"),
    [
        ({"username": "admin", "password": "x"}, None, "basic authentication"),
        ({"auth-provider": {"name": "oidc"}}, None, "auth-provider is not supported"),
        ({"token": "t"}, {"server": "https://a", "tls-server-name": "b"}, "tls-server-name"),
        ({"token": "t"}, {"server": "https://a", "proxy-url": "http://p"}, "proxy-url"),
        ({"token": "t"}, {"server": "api.lab:6443"}, "no https:// server"),
        ({"client-certificate-data": b64(b"c")}, None, "needs its key"),
        ({"token": "t"}, {"server": "https://a", "certificate-authority-data": "%%"}, "base64"),
        (
            {"exec": {"apiVersion": "client.authentication.k8s.io/v1alpha1", "command": "x"}},
            None,
            "not supported",
        ),
        ({"exec": {"args": ["x"]}}, None, "names no command"),
    ],
)
def test_what_would_change_who_we_are_or_where_we_connect_is_refused(
    tmp_path: Path, user: dict[str, Any], cluster: dict[str, Any] | None, message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        credentials.from_kubeconfig([kubeconfig(tmp_path / "config", user, cluster)])


def test_missing_contexts_and_files_say_what_is_missing(tmp_path: Path) -> None:
    path = kubeconfig(tmp_path / "config", {"token": "t"})
    with pytest.raises(ConfigError, match="no context 'prod'"):
        credentials.from_kubeconfig([path], context="prod")
    with pytest.raises(ConfigError, match="no kubeconfig at"):
        credentials.from_kubeconfig([tmp_path / "nothing"])
    (tmp_path / "list").write_text("- a\n- b\n")
    with pytest.raises(ConfigError, match="not a mapping"):
        credentials.from_kubeconfig([tmp_path / "list"])
    with pytest.raises(ConfigError, match="not in a pod"):
        credentials.load(env={"KUBECONFIG": str(tmp_path / "nothing")}, service_account=tmp_path)


def _pod(tmp_path: Path, token: str = "pod-token") -> tuple[dict[str, str], Path]:
    sa = tmp_path / "sa"
    sa.mkdir(exist_ok=True)
    (sa / "token").write_text(token + "\n")
    (sa / "ca.crt").write_text("PEM")
    (sa / "namespace").write_text("dpio-system")
    return {"KUBERNETES_SERVICE_HOST": "fd00::1", "KUBERNETES_SERVICE_PORT": "443"}, sa


def test_in_a_pod_the_service_account_wins_for_the_operator_and_the_kubeconfig_for_the_cli(
    tmp_path: Path,
) -> None:
    env, sa = _pod(tmp_path)
    env["KUBECONFIG"] = str(kubeconfig(tmp_path / "config", {"token": "kubeconfig-token"}))
    operator = credentials.load(env=env, service_account=sa)
    assert operator.server == "https://[fd00::1]:443"
    assert operator.ca_file == str(sa / "ca.crt")
    assert operator.namespace == "dpio-system"
    assert operator.authorization() == "Bearer pod-token"
    cli = credentials.load(env=env, service_account=sa, prefer_in_cluster=False)
    assert cli.authorization() == "Bearer kubeconfig-token"
    # No kubeconfig where one is looked for: the CLI falls back to the pod's account.
    env["KUBECONFIG"] = str(tmp_path / "none")
    fallback = credentials.load(env=env, service_account=sa, prefer_in_cluster=False)
    assert fallback.source == "in-cluster"
    assert credentials.in_cluster({}, sa) is None


def test_a_token_file_is_read_again_after_a_minute_or_a_401(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env, sa = _pod(tmp_path, "one")
    creds = credentials.in_cluster(env, sa)
    assert creds is not None
    now = [1000.0]
    monkeypatch.setattr(creds._tokens, "_clock", lambda: now[0])
    assert creds.authorization() == "Bearer one"
    (sa / "token").write_text("two")
    now[0] += credentials.TOKEN_FILE_TTL - 1
    assert creds.authorization() == "Bearer one"
    now[0] += 1
    assert creds.authorization() == "Bearer two"
    (sa / "token").write_text("three")
    creds.token_expired()
    assert creds.authorization() == "Bearer three"
    (sa / "token").unlink()
    creds.token_expired()
    with pytest.raises(ConfigError, match="cannot read the token file"):
        creds.authorization()


def _plugin(tmp_path: Path, status: dict[str, Any], exit_code: int = 0) -> Path:
    """An exec plugin printing `status` and counting its runs; it checks KUBERNETES_EXEC_INFO."""
    script = tmp_path / "plugin.py"
    script.write_text(
        f"#!{sys.executable}\n"
        "import json, os, pathlib, sys\n"
        "info = json.loads(os.environ['KUBERNETES_EXEC_INFO'])\n"
        "assert info['kind'] == 'ExecCredential' and os.environ['LAB'] == 'yes'\n"
        "runs = pathlib.Path(sys.argv[1])\n"
        "runs.write_text(str(int(runs.read_text() or 0) + 1) if runs.exists() else '1')\n"
        f"print(json.dumps({{'status': {status!r}}}))\n"
        f"sys.exit({exit_code})\n"
    )
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return script


def _exec_user(script: Path, runs: Path) -> dict[str, Any]:
    return {
        "exec": {
            "apiVersion": "client.authentication.k8s.io/v1",
            "command": f"./{script.name}",
            "args": [str(runs)],
            "env": [{"name": "LAB", "value": "yes"}],
        }
    }


def test_an_exec_plugin_token_is_kept_until_shortly_before_it_expires(tmp_path: Path) -> None:
    soon = datetime.datetime.now(datetime.UTC) + datetime.timedelta(seconds=30)
    later = datetime.datetime.now(datetime.UTC) + datetime.timedelta(hours=1)
    runs = tmp_path / "runs"
    for expiry, expected_runs in ((later, 1), (soon, 2)):
        runs.unlink(missing_ok=True)
        status = {"token": "plugged", "expirationTimestamp": expiry.isoformat()}
        script = _plugin(tmp_path, status)
        creds = credentials.from_kubeconfig(
            [kubeconfig(tmp_path / "config", _exec_user(script, runs))]
        )
        assert creds.authorization() == "Bearer plugged"
        assert creds.authorization() == "Bearer plugged"
        assert creds.token_expires() == expiry
        # within the renewal margin of its expiry, every use runs the plugin again
        assert int(runs.read_text()) == expected_runs


@pytest.mark.parametrize(
    ("status", "exit_code", "message"),
    [
        ({"token": "t"}, 3, "exited 3"),
        ({"clientCertificateData": "PEM", "clientKeyData": "KEY"}, 0, "a client certificate"),
        ({}, 0, "no token"),
    ],
)
def test_an_exec_plugin_that_fails_or_returns_no_token_is_an_error(
    tmp_path: Path, status: dict[str, Any], exit_code: int, message: str
) -> None:
    script = _plugin(tmp_path, status, exit_code)
    path = kubeconfig(tmp_path / "config", _exec_user(script, tmp_path / "runs"))
    with pytest.raises(ConfigError, match=message):
        credentials.from_kubeconfig([path]).authorization()


def test_inline_client_certificates_load_without_leaving_files(tmp_path: Path) -> None:
    pki = pytest.importorskip("cryptography.hazmat.primitives.asymmetric.ec")
    from cryptography import x509  # noqa: PLC0415
    from cryptography.hazmat.primitives import hashes, serialization  # noqa: PLC0415
    from cryptography.x509.oid import NameOID  # noqa: PLC0415

    key = pki.generate_private_key(pki.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "me")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    cert_pem = cert.public_bytes(serialization.Encoding.PEM)
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    creds = Credentials(
        server="https://api.lab:6443", ca_data=cert_pem, cert_data=cert_pem, key_data=key_pem
    )
    before = set(Path(os.environ.get("TMPDIR", "/tmp")).glob("dpio-kube-*"))
    context = creds.ssl_context()
    assert context is not None
    assert context.check_hostname
    assert set(Path(os.environ.get("TMPDIR", "/tmp")).glob("dpio-kube-*")) == before
    insecure = Credentials(server="https://api.lab:6443", insecure=True).ssl_context()
    assert insecure is not None
    assert not insecure.check_hostname
    assert Credentials(server="http://127.0.0.1:8080").ssl_context() is None
