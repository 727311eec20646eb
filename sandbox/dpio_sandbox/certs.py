"""The sandbox PKI: one CA, serving and client certificates, the service-account signing key.

Everything is PEM under a state directory and reused when present, so a restarted control plane
keeps its identity and old kubeconfigs stay valid.
"""

from __future__ import annotations

import datetime
import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

_LOOPBACK_DNS = ("localhost",)
_LOOPBACK_IPS = ("127.0.0.1", "::1")


@dataclass(frozen=True)
class KeyPair:
    """A certificate (or public key) and its private key, as PEM files."""

    cert: Path
    key: Path


def ensure_ca(directory: Path, name: str = "dpio-sandbox-ca") -> KeyPair:
    """The sandbox CA in ``directory`` (``<name>.crt``/``.key``), created on first use."""
    pair = _pair(directory, name)
    if _exists(pair):
        return pair
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    cert = (
        _builder(subject, subject, key.public_key(), days=3650)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(_usage(cert_sign=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    _write(pair, cert, key)
    return pair


def issue_serving_cert(
    ca: KeyPair,
    name: str,
    directory: Path,
    *,
    dns_names: Sequence[str] = (),
    ips: Sequence[str] = (),
) -> KeyPair:
    """A TLS server certificate for loopback (127.0.0.1, ::1, localhost) plus extra SANs.

    An existing one is reused if it names every SAN asked for (issued again otherwise: the node
    adds its bridge address to the API server's and the simulator's)."""
    pair = _pair(directory, name)
    sans: list[x509.GeneralName] = [x509.DNSName(d) for d in (*_LOOPBACK_DNS, *dns_names)]
    sans += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in (*_LOOPBACK_IPS, *ips)]
    if _exists(pair) and set(sans) <= _sans(pair.cert):
        return pair
    return _issue(
        ca, pair, name, organizations=(), usage=ExtendedKeyUsageOID.SERVER_AUTH, sans=sans
    )


def issue_client_cert(
    ca: KeyPair, name: str, directory: Path, *, common_name: str, organizations: Sequence[str] = ()
) -> KeyPair:
    """A TLS client certificate; Kubernetes reads CN as the user and O as its groups."""
    pair = _pair(directory, name)
    if _exists(pair):
        return pair
    return _issue(
        ca,
        pair,
        common_name,
        organizations=organizations,
        usage=ExtendedKeyUsageOID.CLIENT_AUTH,
        sans=[],
    )


def ensure_service_account_key(directory: Path) -> KeyPair:
    """RSA key pair that signs ServiceAccount tokens (``sa.pub``/``sa.key``)."""
    pair = KeyPair(cert=directory / "sa.pub", key=directory / "sa.key")
    if _exists(pair):
        return pair
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    directory.mkdir(parents=True, exist_ok=True)
    pair.key.write_bytes(_private_pem(key))
    pair.key.chmod(0o600)
    pair.cert.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return pair


def _issue(
    ca: KeyPair,
    pair: KeyPair,
    common_name: str,
    *,
    organizations: Sequence[str],
    usage: x509.ObjectIdentifier,
    sans: list[x509.GeneralName],
) -> KeyPair:
    ca_cert = x509.load_pem_x509_certificate(ca.cert.read_bytes())
    ca_key = serialization.load_pem_private_key(ca.key.read_bytes(), password=None)
    if not isinstance(ca_key, (ec.EllipticCurvePrivateKey, rsa.RSAPrivateKey)):
        raise TypeError(f"unsupported CA key type in {ca.key}")
    key = ec.generate_private_key(ec.SECP256R1())
    attrs = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, o) for o in organizations]
    subject = x509.Name([*attrs, x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    builder = (
        _builder(subject, ca_cert.subject, key.public_key(), days=365)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_usage(cert_sign=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
    )
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    signer: CertificateIssuerPrivateKeyTypes = ca_key
    _write(pair, builder.sign(signer, hashes.SHA256()), key)
    return pair


def _builder(
    subject: x509.Name, issuer: x509.Name, public_key: ec.EllipticCurvePublicKey, days: int
) -> x509.CertificateBuilder:
    # Backdated an hour so small clock differences between processes do not matter.
    now = datetime.datetime.now(datetime.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=days))
    )


def _usage(*, cert_sign: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=not cert_sign,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=cert_sign,
        crl_sign=cert_sign,
        encipher_only=False,
        decipher_only=False,
    )


def _sans(cert_file: Path) -> set[x509.GeneralName]:
    cert = x509.load_pem_x509_certificate(cert_file.read_bytes())
    try:
        return set(cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value)
    except x509.ExtensionNotFound:
        return set()


def _pair(directory: Path, name: str) -> KeyPair:
    return KeyPair(cert=directory / f"{name}.crt", key=directory / f"{name}.key")


def _exists(pair: KeyPair) -> bool:
    return pair.cert.is_file() and pair.key.is_file()


def _private_pem(key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )


def _write(pair: KeyPair, cert: x509.Certificate, key: ec.EllipticCurvePrivateKey) -> None:
    pair.cert.parent.mkdir(parents=True, exist_ok=True)
    # Key first: a cert without its key would be taken as complete by _exists on the next run.
    pair.key.write_bytes(_private_pem(key))
    pair.key.chmod(0o600)
    pair.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
