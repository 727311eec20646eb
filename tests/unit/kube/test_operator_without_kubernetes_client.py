"""The operator's process never imports the kubernetes client (kopf would, when it can: finding 36
in docs/benchmarks.md), and kopf logs in with the operator's own credentials."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from dpio.handlers import login

#: Runs the entry point as `python -m` does (its `__main__` guard included), stops it at
#: `--help`, and prints the kubernetes modules actually loaded (a blocked import leaves None).
ENTRY = """
import json, runpy, sys
sys.argv = ["dpio-operator", "--help"]
try:
    runpy.run_module("dpio.handlers.main", run_name="__main__", alter_sys=True)
except SystemExit:
    pass
print(json.dumps([m for m, v in sys.modules.items() if v is not None
                  and m.split(".")[0] in ("kubernetes", "kopf", "aiohttp")]))
"""


def _loaded(code: str) -> set[str]:
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    return {m.split(".")[0] for m in json.loads(done.stdout.splitlines()[-1])}


def test_the_operator_entry_point_loads_kopf_but_not_the_kubernetes_client() -> None:
    assert _loaded(ENTRY) == {"kopf", "aiohttp"}
    # kopf alone does load it where it is installed (this environment has it for the tests):
    # the entry point's guard is what keeps it out.
    plain = ENTRY.replace('run_name="__main__"', 'run_name="imported"')
    assert _loaded(plain) == {"kopf", "aiohttp", "kubernetes"}


def test_kopf_logs_in_with_the_operators_credentials(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = {
        "current-context": "lab",
        "clusters": [
            {
                "name": "c",
                "cluster": {
                    "server": "https://api.lab:6443",
                    "certificate-authority-data": base64.b64encode(b"CA").decode(),
                },
            }
        ],
        "users": [
            {
                "name": "u",
                "user": {"token": "tok", "client-certificate": "me.crt", "client-key": "me.key"},
            }
        ],
        "contexts": [{"name": "lab", "context": {"cluster": "c", "user": "u", "namespace": "n"}}],
    }
    (tmp_path / "config").write_text(yaml.safe_dump(config))
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "config"))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    info = login.login()
    assert info.server == "https://api.lab:6443"
    assert info.ca_data == b"CA"
    assert info.ca_path is None
    assert (info.scheme, info.token) == ("Bearer", "tok")
    assert info.certificate_path == str(tmp_path / "me.crt")
    assert info.private_key_path == str(tmp_path / "me.key")
    assert info.default_namespace == "n"
    assert info.expiration is None
