"""A TLS server context from a certificate and key on disk, reloaded when the files change.

A mounted Secret is updated in place when its certificate is renewed (cert-manager, or by hand):
the kubelet swaps both files at once. Every new connection gets the context of the files as they
are now (two `stat` calls), so a renewed certificate is served without a restart. A pair that
does not load (a half-written update) leaves the last good context in use and is tried again on
the next connection.
"""

from __future__ import annotations

import logging
import os
import ssl
from dataclasses import dataclass

_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CertFiles:
    """PEM files: the certificate (chain) and its private key, e.g. a kubernetes.io/tls Secret's
    `tls.crt` and `tls.key`."""

    cert: str
    key: str


def server_context(files: CertFiles) -> ssl.SSLContext:
    """TLS 1.2 or newer, the default ciphers, no client certificates asked for."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(files.cert, files.key)
    return context


class ReloadingContext:
    """`current()`: the context of `files` as they are now. Raises OSError (ssl.SSLError is one)
    at construction if they don't load at all."""

    def __init__(self, files: CertFiles) -> None:
        self.files = files
        self._stamp = self._read_stamp()
        self._context = server_context(files)
        self._failed: tuple[tuple[int, ...], ...] | None = None
        self.loads = 1  # how many times the files were loaded, for tests and logs

    def _read_stamp(self) -> tuple[tuple[int, ...], ...]:
        stats = [os.stat(path) for path in (self.files.cert, self.files.key)]  # follows symlinks
        return tuple((s.st_ino, s.st_size, s.st_mtime_ns) for s in stats)

    def current(self) -> ssl.SSLContext:
        try:
            stamp = self._read_stamp()
        except OSError:  # in the middle of an update: the files are back in a moment
            return self._context
        if stamp in (self._stamp, self._failed):
            return self._context
        try:
            context = server_context(self.files)
        except OSError as err:  # ssl.SSLError is one
            self._failed = stamp  # warned once per version of the files
            _log.warning("Could not reload the metrics certificate; serving the previous one",
                         extra={"cert": self.files.cert, "error": str(err)})  # fmt: skip
            return self._context
        self._context, self._stamp, self._failed = context, stamp, None
        self.loads += 1
        _log.info("Reloaded the metrics certificate", extra={"cert": self.files.cert})
        return self._context
