"""vCenter credentials from a Secret's data, and the TLS context that goes with them.

Pure: the caller reads the Secret and passes its decoded `data`: keys `server`, `username`,
`password`, and exactly one of `caBundle` (PEM) or `thumbprint`; `insecure: "true"` only by
explicit choice (docs/design.md, "vCenter access"). The password never shows in `repr`, errors
or logs.

Trust, in order of preference:
- `caBundle`: the server certificate must chain to it and match the host name (the default).
- `thumbprint`: the peer certificate's SHA-1 or SHA-256 fingerprint must match. We check it
  ourselves after the handshake instead of using pyVmomi's `thumbprint=` argument, because that
  check is not applied to the API-version discovery request and older pyVmomi releases accept
  SHA-1 only.
- `insecure: "true"`: no verification at all; never a default.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import socket
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

SERVER, USERNAME, PASSWORD = "server", "username", "password"
CA_BUNDLE, THUMBPRINT, INSECURE = "caBundle", "thumbprint", "insecure"

_PEM_CERTIFICATE = "-----BEGIN CERTIFICATE-----"
_HEX_PAIRS = re.compile(r"[0-9a-f]{2}(?::[0-9a-f]{2})*")
# SHA-1 (what the vSphere Client shows) and SHA-256 (what vCenter 7+ also shows), in hex digits.
_DIGESTS = {40: "sha1", 64: "sha256"}


class CredentialsError(ValueError):
    """The Secret can't be used; the message names the key at fault, never a value."""


class ThumbprintMismatch(ssl.SSLCertVerificationError):
    """The server certificate's fingerprint is not the pinned one."""


@dataclass(frozen=True, slots=True)
class Credentials:
    """Where vCenter is, who logs in, and how its certificate is trusted."""

    host: str
    port: int
    path: str
    username: str
    password: str = field(repr=False)
    ca_bundle: str | None = None
    thumbprint: str | None = None  # lower-case hex, no colons
    insecure: bool = False

    def __repr__(self) -> str:
        trust = "caBundle" if self.ca_bundle else "thumbprint" if self.thumbprint else "insecure"
        return f"Credentials(server={self.server!r}, username={self.username!r}, trust={trust})"

    @property
    def server(self) -> str:
        """`host:port`, as used in logs and in the session cache key."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    @property
    def url(self) -> str:
        return f"https://{self.server}{self.path}"

    def cache_key(self) -> tuple[str, str, str]:
        """server + user + password hash, like cluster-api-provider-vsphere's session cache."""
        digest = hashlib.sha256(self.password.encode()).hexdigest()
        return (self.server, self.username, digest)

    def secrets(self) -> tuple[str, ...]:
        """Values that must never appear in a message."""
        return (self.password,)


def _text(data: Mapping[str, str | bytes], key: str) -> str:
    value = data.get(key)
    if isinstance(value, bytes):
        try:
            value = value.decode("utf-8")
        except UnicodeDecodeError as err:
            raise CredentialsError(f"Secret key {key!r} is not UTF-8 text") from err
    return (value or "").strip()


def _required(data: Mapping[str, str | bytes], key: str) -> str:
    value = _text(data, key)
    if not value:
        raise CredentialsError(f"Secret key {key!r} is missing or empty")
    return value


def parse_server(server: str) -> tuple[str, int, str]:
    """`vc.lab`, `vc.lab:8443`, `https://vc.lab/sdk` -> (host, port, path)."""
    text = server if "://" in server else f"https://{server}"
    try:
        parts = urlsplit(text)
        port = parts.port or 443
    except ValueError as err:
        raise CredentialsError(f"Secret key {SERVER!r} is not a host name or URL") from err
    if parts.scheme != "https":
        raise CredentialsError(f"Secret key {SERVER!r} must use https, not {parts.scheme}")
    if not parts.hostname:
        raise CredentialsError(f"Secret key {SERVER!r} has no host name")
    path = parts.path.rstrip("/") or "/sdk"
    return parts.hostname, port, path


def normalize_thumbprint(value: str) -> str:
    """`AA:BB:...` or `aabb...` (SHA-1 or SHA-256) -> lower-case hex without colons."""
    text = value.strip().lower()
    plain = text.replace(":", "")
    if ":" in text and not _HEX_PAIRS.fullmatch(text):
        raise CredentialsError(f"Secret key {THUMBPRINT!r} must be hex pairs separated by colons")
    if any(c not in "0123456789abcdef" for c in plain) or len(plain) not in _DIGESTS:
        raise CredentialsError(
            f"Secret key {THUMBPRINT!r} must be a SHA-1 (40 hex digits) or "
            f"SHA-256 (64 hex digits) fingerprint"
        )
    return plain


def _insecure(data: Mapping[str, str | bytes]) -> bool:
    value = _text(data, INSECURE).lower()
    if value not in ("", "true", "false"):
        raise CredentialsError(f'Secret key {INSECURE!r} must be "true" or "false"')
    return value == "true"


def from_secret_data(data: Mapping[str, str | bytes]) -> Credentials:
    """Credentials from a Secret's decoded data; `CredentialsError` names what is wrong."""
    host, port, path = parse_server(_required(data, SERVER))
    username = _required(data, USERNAME)
    password = _text(data, PASSWORD)
    if not password:
        raise CredentialsError(f"Secret key {PASSWORD!r} is missing or empty")
    ca_bundle = _text(data, CA_BUNDLE) or None
    thumbprint = _text(data, THUMBPRINT) or None
    insecure = _insecure(data)
    chosen = [
        k for k, v in ((CA_BUNDLE, ca_bundle), (THUMBPRINT, thumbprint), (INSECURE, insecure)) if v
    ]
    if not chosen:
        raise CredentialsError(
            f'Secret needs {CA_BUNDLE!r} (PEM) or {THUMBPRINT!r}; {INSECURE}: "true" only by '
            "explicit choice"
        )
    if len(chosen) > 1:
        raise CredentialsError(f"Secret sets {' and '.join(chosen)}: set exactly one")
    if ca_bundle is not None and _PEM_CERTIFICATE not in ca_bundle:
        raise CredentialsError(f"Secret key {CA_BUNDLE!r} holds no PEM certificate")
    return Credentials(
        host=host,
        port=port,
        path=path,
        username=username,
        password=password,
        ca_bundle=ca_bundle,
        thumbprint=normalize_thumbprint(thumbprint) if thumbprint else None,
        insecure=insecure,
    )


def fingerprint(der: bytes, digest: str) -> str:
    return hashlib.new(digest, der).hexdigest()


class PinnedSSLContext(ssl.SSLContext):
    """Accepts exactly the server certificate whose fingerprint is `pinned_thumbprint`.

    Chain and host name are not checked (that is the point of pinning); the fingerprint is
    compared after the handshake and before a single byte of the request is sent.
    """

    pinned_thumbprint: str = ""

    def wrap_socket(  # noqa: PLR0917 - the signature is ssl.SSLContext.wrap_socket's
        self,
        sock: socket.socket,
        server_side: bool = False,
        do_handshake_on_connect: bool = True,
        suppress_ragged_eofs: bool = True,
        server_hostname: str | bytes | None = None,
        session: ssl.SSLSession | None = None,
    ) -> ssl.SSLSocket:
        wrapped = super().wrap_socket(
            sock,
            server_side=server_side,
            do_handshake_on_connect=True,
            suppress_ragged_eofs=suppress_ragged_eofs,
            server_hostname=server_hostname,
            session=session,
        )
        der = wrapped.getpeercert(binary_form=True) or b""
        actual = fingerprint(der, _DIGESTS[len(self.pinned_thumbprint)])
        if not hmac.compare_digest(actual, self.pinned_thumbprint):
            wrapped.close()
            raise ThumbprintMismatch(
                f"server certificate fingerprint {actual} does not match the pinned thumbprint"
            )
        return wrapped


def ssl_context(credentials: Credentials) -> ssl.SSLContext:
    """The TLS client context for `credentials`: CA, pinned thumbprint, or (explicitly) none."""
    if credentials.ca_bundle is not None:
        try:
            context = ssl.create_default_context(cadata=credentials.ca_bundle)
        except (ssl.SSLError, ValueError) as err:
            raise CredentialsError(f"Secret key {CA_BUNDLE!r} is not a valid PEM bundle") from err
    elif credentials.thumbprint is not None:
        pinned = PinnedSSLContext(ssl.PROTOCOL_TLS_CLIENT)
        pinned.check_hostname = False
        pinned.verify_mode = ssl.CERT_NONE
        pinned.pinned_thumbprint = credentials.thumbprint
        context = pinned
    else:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context
