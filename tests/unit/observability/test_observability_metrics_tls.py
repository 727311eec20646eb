"""/metrics over HTTPS: the certificate from files, served again after the files change the way
the kubelet updates a mounted Secret (an atomic swap of the `..data` symlink), the last good one
kept while a pair doesn't load, and a certificate that never loads logged, not fatal."""

from __future__ import annotations

import logging
import os
import shutil
import socket
import ssl
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from dpio.observability import metrics
from dpio.observability.tls import CertFiles
from dpio_sandbox import certs


class SecretVolume:
    """A directory laid out as the kubelet mounts a Secret: tls.crt -> ..data/tls.crt,
    ..data -> ..<version>/, swapped in one rename when the Secret changes."""

    def __init__(self, root: Path) -> None:
        self.root, self.versions = root, 0
        root.mkdir()
        self.files = CertFiles(str(root / "tls.crt"), str(root / "tls.key"))

    def put(self, pair: certs.KeyPair) -> None:
        self.versions += 1
        version = self.root / f"..v{self.versions}"
        version.mkdir()
        shutil.copy(pair.cert, version / "tls.crt")
        shutil.copy(pair.key, version / "tls.key")
        (self.root / "..data_tmp").symlink_to(version.name)
        os.replace(self.root / "..data_tmp", self.root / "..data")
        for name in ("tls.crt", "tls.key"):
            if not (self.root / name).is_symlink():
                (self.root / name).symlink_to(f"..data/{name}")


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> certs.KeyPair:
    return certs.ensure_ca(tmp_path_factory.mktemp("ca"))


def _issue(ca: certs.KeyPair, directory: Path, name: str) -> certs.KeyPair:
    return certs.issue_serving_cert(ca, name, directory, dns_names=["dpio-metrics.test"])


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def volume(tmp_path: Path, ca: certs.KeyPair) -> SecretVolume:
    vol = SecretVolume(tmp_path / "metrics-tls")
    vol.put(_issue(ca, tmp_path, "first"))
    return vol


@pytest.fixture
def https(volume: SecretVolume) -> Iterator[int]:
    server = metrics.serve(_free_port(), "127.0.0.1", tls=volume.files)
    assert server is not None
    try:
        yield server.port
    finally:
        server.stop()


def _client(ca: certs.KeyPair) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(ca.cert))


def _served_cert(port: int, ca: certs.KeyPair) -> bytes:
    with (
        socket.create_connection(("127.0.0.1", port), timeout=5) as raw,
        _client(ca).wrap_socket(raw, server_hostname="dpio-metrics.test") as tls,
    ):
        der = tls.getpeercert(binary_form=True)
    assert der is not None
    return der


def _der(pair: certs.KeyPair) -> bytes:
    return ssl.PEM_cert_to_DER_cert(pair.cert.read_text())


def test_metrics_are_served_over_https_with_the_certificate_of_the_files(
    https: int, ca: certs.KeyPair
) -> None:
    metrics.record_reconcile("HttpsKind", 0.01, failed=False)
    url = f"https://127.0.0.1:{https}/metrics"  # the sandbox's certificates name 127.0.0.1 too
    with urllib.request.urlopen(url, timeout=5, context=_client(ca)) as response:
        text = response.read().decode()
    assert 'dpio_reconcile_total{kind="HttpsKind"} 1.0' in text


def test_plain_http_on_the_https_port_is_refused_and_the_server_goes_on(
    https: int, ca: certs.KeyPair, volume: SecretVolume
) -> None:
    with socket.create_connection(("127.0.0.1", https), timeout=5) as raw:
        raw.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        try:
            reply = raw.recv(4096)  # a TLS alert, or nothing
        except ConnectionResetError:
            reply = b""
    assert not reply.startswith(b"HTTP/")
    assert _served_cert(https, ca) == _der(_pair_of(volume))


def _pair_of(volume: SecretVolume) -> certs.KeyPair:
    return certs.KeyPair(Path(volume.files.cert), Path(volume.files.key))


def test_a_renewed_certificate_is_served_on_the_next_connection(
    https: int, ca: certs.KeyPair, volume: SecretVolume, tmp_path: Path
) -> None:
    first = _served_cert(https, ca)
    second = _issue(ca, tmp_path, "second")
    volume.put(second)
    assert _served_cert(https, ca) == _der(second) != first


def test_a_pair_that_does_not_load_keeps_the_last_good_certificate(
    https: int,
    ca: certs.KeyPair,
    volume: SecretVolume,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    first = _served_cert(https, ca)
    other = _issue(ca, tmp_path, "other")
    mismatched = certs.KeyPair(other.cert, tmp_path / "first.key")  # a key of another cert
    volume.put(mismatched)
    with caplog.at_level(logging.WARNING, logger="dpio.observability.tls"):
        assert _served_cert(https, ca) == first
        assert _served_cert(https, ca) == first
    warnings = [r for r in caplog.records if "Could not reload" in r.getMessage()]
    assert len(warnings) == 1  # once per version of the files, not per connection
    volume.put(other)
    assert _served_cert(https, ca) == _der(other)


def test_a_certificate_that_does_not_load_is_logged_and_no_port_opened(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "tls.crt").write_text("not a certificate")
    (tmp_path / "tls.key").write_text("not a key")
    port = _free_port()
    files = CertFiles(str(tmp_path / "tls.crt"), str(tmp_path / "tls.key"))
    assert metrics.serve(port, "127.0.0.1", tls=files) is None
    missing = CertFiles(str(tmp_path / "absent.crt"), str(tmp_path / "absent.key"))
    assert metrics.serve(port, "127.0.0.1", tls=missing) is None
    assert caplog.text.count("Could not serve metrics") == 2
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", port)) != 0
