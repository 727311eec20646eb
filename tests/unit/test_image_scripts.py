"""`make image`'s pure parts: the podman command lines and configuration it writes. The build
and the running image are tested in tests/integration/image/test_image.py."""

from __future__ import annotations

import resource
from pathlib import Path
from typing import Any

import pytest

from dpio_sandbox import baseimage, image, podman

DEPLOYMENT: dict[str, Any] = {  # the parts of the chart's Deployment that Security reads
    "spec": {"template": {"spec": {
        "securityContext": {"runAsNonRoot": True, "runAsUser": 65532, "runAsGroup": 65532},
        "containers": [{
            "securityContext": {
                "allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                "capabilities": {"drop": ["ALL"]},
            },
            "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"},
                             {"name": "tls", "mountPath": "/etc/tls", "readOnly": True}],
        }],
        "volumes": [{"name": "tmp", "emptyDir": {"sizeLimit": "16Mi"}},
                    {"name": "tls", "secret": {"secretName": "x"}}],
    }}},
}  # fmt: skip


def test_the_deployments_security_context_becomes_podman_flags() -> None:
    security = image.Security.from_deployment(DEPLOYMENT)

    assert security == image.Security(65532, 65532, True, True, True, ("/tmp",))
    assert security.flags() == [
        "--user=65532:65532",
        "--read-only",
        "--read-only-tmpfs=false",  # podman's own tmpfs set would make /run, /var/tmp writable
        "--cap-drop=ALL",
        "--security-opt=no-new-privileges",
        "--tmpfs=/tmp:rw,size=16m,mode=1777",
    ]


def test_a_deployment_that_allows_escalation_gets_no_restriction_it_did_not_ask_for() -> None:
    loose: Any = {"spec": {"template": {"spec": {"containers": [{
        "securityContext": {"runAsUser": 1000},
    }]}}}}  # fmt: skip

    security = image.Security.from_deployment(loose)

    assert security.flags() == ["--user=1000:1000"]


def test_the_ca_bundle_is_mounted_read_only_and_named_for_the_builder(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("-----BEGIN CERTIFICATE-----\n")

    argv = image.build_argv("localhost/x:1", "localhost/base:1", ca)

    assert argv[:2] == ["podman", "build"]
    assert f"{ca}:{image.BUILD_CA}:ro" in argv
    assert f"SSL_CERT_FILE={image.BUILD_CA}" in argv
    assert f"PIP_CERT={image.BUILD_CA}" in argv
    assert "PYTHON_IMAGE=localhost/base:1" in argv
    assert argv[-1] == str(image.REPO_ROOT)


def test_without_a_ca_bundle_or_stand_in_the_build_is_the_plain_dockerfile_build() -> None:
    argv = image.build_argv("localhost/x:1", baseimage.default(), None)

    assert not [a for a in argv if "PYTHON_IMAGE" in a or "CERT" in a or ":ro" in a]


def test_the_default_base_is_the_dockerfiles() -> None:
    assert baseimage.default() == "python:3.11.14-slim-bookworm"


@pytest.mark.parametrize(
    ("name", "qualified"),
    [
        ("python:3.11", "docker.io/library/python:3.11"),
        ("bitnami/python:3", "docker.io/bitnami/python:3"),
        ("registry.local:5000/python:3", "registry.local:5000/python:3"),
        ("localhost/dpio-python-base:x", "localhost/dpio-python-base:x"),
    ],
)
def test_short_names_are_pulled_from_docker_hub(name: str, qualified: str) -> None:
    assert baseimage._qualified(name) == qualified


def test_the_stand_in_cache_key_follows_its_recipe(monkeypatch: pytest.MonkeyPatch) -> None:
    key = baseimage.cache_key()
    monkeypatch.setattr(baseimage, "PACKAGES", (*baseimage.PACKAGES, "curl"))

    assert baseimage.cache_key() != key


def test_default_ulimits_stay_within_the_callers_hard_limits() -> None:
    """Rootful podman's defaults (nofile 1048576) need CAP_SYS_RESOURCE, which CI may lack."""
    conf = podman.containers_conf()
    (line,) = [x for x in conf.splitlines() if x.startswith("default_ulimits")]
    limits = {
        item.split("=")[0]: int(item.split("=")[1].split(":")[1])
        for item in line.split("[")[1].rstrip("]").replace('"', "").split(", ")
    }
    for name, which in (("nofile", resource.RLIMIT_NOFILE), ("nproc", resource.RLIMIT_NPROC)):
        hard = resource.getrlimit(which)[1]
        assert hard == resource.RLIM_INFINITY or limits[name] <= hard
    assert 'runtime = "runc"' in conf


def test_without_podman_the_reason_names_what_is_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    """What the image test's skip message says on a machine without the tools."""
    monkeypatch.setattr(podman.shutil, "which", lambda tool: None)

    reason = image.unavailable()

    assert reason is not None
    assert reason.startswith("podman, runc not installed")
    assert "make image" in reason


def test_the_kubeconfig_copy_is_readable_by_the_containers_user(tmp_path: Path) -> None:
    from dpio_sandbox import imagerun  # noqa: PLC0415 - imports helm's module

    original = tmp_path / "kubeconfig"
    original.write_text("{}")
    original.chmod(0o600)

    copy = imagerun.readable_copy(original, tmp_path / "image-run")

    assert copy.read_text() == "{}"
    assert copy.stat().st_mode & 0o777 == 0o644
    assert copy.parent.stat().st_mode & 0o777 == 0o700


def test_a_machine_that_cannot_start_a_container_is_unavailable_not_a_broken_build(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The image test skips on this error, with podman's own words; a failing Dockerfile step
    (after a container could start) is a PodmanError, which fails it."""
    monkeypatch.setattr(image, "unavailable", lambda: None)
    monkeypatch.setattr(baseimage, "resolve", lambda: "localhost/base:1")

    def refuse(*args: str, **_: object) -> str:
        raise podman.PodmanError("podman run: runc create failed: error setting rlimits")

    monkeypatch.setattr(podman, "run", refuse)

    with pytest.raises(image.ImageUnavailableError, match="error setting rlimits"):
        image.build()
