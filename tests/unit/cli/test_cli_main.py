"""Argument handling and exit codes of `dpio` (no vCenter, no API server needed)."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from dpio.cli.main import build_parser, run


def call(*argv: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = run(list(argv), env=env or {}, stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["bogus"],
        ["plan"],  # -f is required
        ["status", "-n", "ml", "-A"],
        ["inventory", "-o", "wide"],
        ["plan", "-f", "x", "-o", "yaml"],
        ["inventory", "--insecure", "--thumbprint", "ab"],  # one way to trust vCenter
    ],
)
def test_usage_errors_exit_1_not_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    # 2 is reserved for "changes pending" (plan), so argparse's own 2 would lie.
    with pytest.raises(SystemExit) as caught:
        run(argv, env={})

    assert caught.value.code == 1
    assert "usage: dpio" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["plan", "-f", "/nonexistent.yaml"], "dpio plan: /nonexistent.yaml: no such file"),
        (
            ["inventory", "--server", "vc.lab", "--insecure"],
            "dpio inventory: set the vCenter password",
        ),
        (
            ["status", "--kubeconfig", "/nonexistent/kubeconfig"],
            "dpio status: no Kubernetes configuration",
        ),
    ],
)
def test_errors_are_one_line_and_exit_1(argv: list[str], message: str) -> None:
    code, out, err = call(*argv)

    assert (code, out) == (1, "")
    assert err.startswith(message), err
    assert "Traceback" not in err


def test_plan_of_files_without_dpio_objects_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "cm.yaml"
    path.write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n")

    code, _, err = call("plan", "-f", str(path))

    assert code == 1
    assert "no dpio.io objects" in err


@pytest.mark.parametrize(
    ("argv", "attribute", "value"),
    [
        (["inventory"], "output", "table"),
        (["inventory", "--host", "a", "--host", "b"], "host", ["a", "b"]),
        (["plan", "-f", "a", "-f", "-"], "filename", ["a", "-"]),
        (["plan", "-f", "a"], "password_env", "VSPHERE_PASSWORD"),
        (["status"], "all_namespaces", False),
        (["status", "-A"], "all_namespaces", True),
    ],
)
def test_defaults_and_repeatable_flags(argv: list[str], attribute: str, value: object) -> None:
    assert getattr(build_parser().parse_args(argv), attribute) == value


KUBECONFIG = """apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://127.0.0.1:1"}}]
users: [{name: u, user: {token: x}}]
contexts: [{name: c, context: {cluster: c, user: u}}]
current-context: c
"""


def test_unreachable_api_server_is_one_line(tmp_path: Path) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(KUBECONFIG)

    code, _, err = call("status", "--kubeconfig", str(kubeconfig))

    assert code == 1
    assert err.startswith("dpio status: Kubernetes API: ")
    assert len(err.splitlines()) == 1


def test_unreachable_vcenter_names_the_server() -> None:
    env = {"VSPHERE_URL": "https://127.0.0.1:1/sdk", "VSPHERE_USER": "u", "VSPHERE_PASSWORD": "pw"}

    code, _, err = call("inventory", "--insecure", env=env)

    assert code == 1
    assert err.startswith("dpio inventory: vCenter 127.0.0.1:1: ")
    assert "pw" not in err.replace("dpio", "")
