"""Secret data -> Credentials: every rule of docs/design.md, "vCenter access", and the password
never leaks."""

from __future__ import annotations

import ssl

import pytest

from dpio.vsphere.credentials import (
    Credentials,
    CredentialsError,
    PinnedSSLContext,
    from_secret_data,
    normalize_thumbprint,
    parse_server,
    ssl_context,
)

SHA1 = "AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01"
SHA256 = "0123456789abcdef" * 4
PEM = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
BASE = {"server": "vc.lab.local", "username": "svc-dpio@vsphere.local", "password": "s3cr3t!"}


@pytest.mark.parametrize(
    ("server", "expected"),
    [
        ("vc.lab.local", ("vc.lab.local", 443, "/sdk")),
        ("vc.lab.local:8443", ("vc.lab.local", 8443, "/sdk")),
        ("https://vc.lab.local/sdk", ("vc.lab.local", 443, "/sdk")),
        ("https://10.0.0.5:4443/sdk/", ("10.0.0.5", 4443, "/sdk")),
        ("[::1]:8989", ("::1", 8989, "/sdk")),
    ],
)
def test_parse_server(server: str, expected: tuple[str, int, str]) -> None:
    assert parse_server(server) == expected


@pytest.mark.parametrize("server", ["http://vc.lab.local", "https://", "vc.lab.local:notaport"])
def test_parse_server_refuses(server: str) -> None:
    with pytest.raises(CredentialsError, match="'server'"):
        parse_server(server)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (SHA1, SHA1.replace(":", "").lower()),
        (SHA1.replace(":", ""), SHA1.replace(":", "").lower()),
        (SHA256, SHA256),
        (":".join(SHA256[i : i + 2] for i in range(0, 64, 2)).upper(), SHA256),
        (f"  {SHA256}\n", SHA256),
    ],
)
def test_normalize_thumbprint(value: str, expected: str) -> None:
    assert normalize_thumbprint(value) == expected


@pytest.mark.parametrize(
    "value",
    [
        SHA1[:-3],  # one byte short
        SHA256 + "00",  # neither SHA-1 nor SHA-256
        "zz" * 20,  # not hex
        "abc:def" + "0" * 34,  # colons in the wrong places
        "",
    ],
)
def test_normalize_thumbprint_refuses(value: str) -> None:
    with pytest.raises(CredentialsError, match="'thumbprint'"):
        normalize_thumbprint(value)


@pytest.mark.parametrize(
    ("extra", "trust"),
    [
        ({"caBundle": PEM}, "caBundle"),
        ({"thumbprint": SHA1}, "thumbprint"),
        ({"insecure": "true"}, "insecure"),
        ({"insecure": "TRUE"}, "insecure"),
        ({"caBundle": PEM, "insecure": "false"}, "caBundle"),
    ],
)
def test_from_secret_data_trust(extra: dict[str, str], trust: str) -> None:
    creds = from_secret_data({**BASE, **extra})
    assert f"trust={trust}" in repr(creds)
    assert creds.insecure is (trust == "insecure")


def test_from_secret_data_accepts_bytes_and_normalizes() -> None:
    data = {k: v.encode() for k, v in {**BASE, "thumbprint": SHA1}.items()}
    creds = from_secret_data(data)
    assert (creds.host, creds.port, creds.username) == ("vc.lab.local", 443, BASE["username"])
    assert creds.thumbprint == SHA1.replace(":", "").lower()
    assert creds.url == "https://vc.lab.local:443/sdk"


@pytest.mark.parametrize(
    ("data", "names"),
    [
        ({"username": "u", "password": "p", "caBundle": PEM}, "'server'"),
        ({"server": "vc", "password": "p", "caBundle": PEM}, "'username'"),
        ({"server": "vc", "username": "u", "caBundle": PEM}, "'password'"),
        ({"server": "vc", "username": "u", "password": "", "caBundle": PEM}, "'password'"),
        (BASE, "'caBundle'"),
        ({**BASE, "insecure": "yes"}, "'insecure'"),
        ({**BASE, "insecure": "false"}, "'caBundle'"),
        ({**BASE, "caBundle": PEM, "thumbprint": SHA1}, "caBundle and thumbprint"),
        ({**BASE, "thumbprint": SHA1, "insecure": "true"}, "thumbprint and insecure"),
        ({**BASE, "caBundle": "not a certificate"}, "'caBundle'"),
        ({**BASE, "username": b"\xff"}, "'username'"),
    ],
)
def test_from_secret_data_refuses(data: dict[str, str | bytes], names: str) -> None:
    with pytest.raises(CredentialsError, match=names) as info:
        from_secret_data(data)
    assert BASE["password"] not in str(info.value)


def test_password_never_in_repr_or_str() -> None:
    creds = from_secret_data({**BASE, "caBundle": PEM})
    for text in (repr(creds), str(creds), f"{creds}"):
        assert BASE["password"] not in text
    assert creds.secrets() == (BASE["password"],)


@pytest.mark.parametrize(
    ("a", "b", "same"),
    [
        ({}, {}, True),
        ({}, {"password": "other"}, False),
        ({}, {"username": "other@vsphere.local"}, False),
        ({}, {"server": "vc.lab.local:8443"}, False),
        ({}, {"thumbprint": SHA256, "caBundle": ""}, True),  # trust is not part of the identity
    ],
)
def test_cache_key(a: dict[str, str], b: dict[str, str], same: bool) -> None:
    first = from_secret_data({**BASE, "caBundle": PEM, **a})
    second = from_secret_data({**BASE, "caBundle": PEM, **b})
    assert (first.cache_key() == second.cache_key()) is same
    assert BASE["password"] not in "".join(first.cache_key())


def _creds(**kwargs: object) -> Credentials:
    base: dict[str, object] = {"host": "vc", "port": 443, "path": "/sdk", "username": "u"}
    return Credentials(password="p", **{**base, **kwargs})  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("creds", "kind", "verify", "check_hostname"),
    [
        (_creds(thumbprint=SHA256), PinnedSSLContext, ssl.CERT_NONE, False),
        (_creds(insecure=True), ssl.SSLContext, ssl.CERT_NONE, False),
    ],
)
def test_ssl_context(
    creds: Credentials, kind: type[ssl.SSLContext], verify: ssl.VerifyMode, check_hostname: bool
) -> None:
    context = ssl_context(creds)
    assert type(context) is kind
    assert (context.verify_mode, context.check_hostname) == (verify, check_hostname)
    assert context.minimum_version == ssl.TLSVersion.TLSv1_2


def test_ssl_context_bad_pem_names_the_key() -> None:
    with pytest.raises(CredentialsError, match="'caBundle'"):
        ssl_context(_creds(ca_bundle=PEM))
