"""TLS contexts for the service's servers and clients from PEM files: a certificate and key
(both or neither), and a CA. With a CA, servers require and verify client certificates (mutual
TLS) and clients verify servers against it; without one, clients use the system trust store."""
from __future__ import annotations

import ssl
from typing import Optional

from openraft_fast.errors import InvalidArgument


def _check(cert: Optional[str], key: Optional[str]) -> None:
    if (cert is None) != (key is None):
        raise InvalidArgument("give both a TLS certificate and its key, or neither")


def server_context(cert: str, key: str, ca: Optional[str] = None) -> ssl.SSLContext:
    _check(cert, key)
    try:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(cert, key)
        if ca is not None:
            ctx.load_verify_locations(cafile=ca)
            ctx.verify_mode = ssl.CERT_REQUIRED
    except (OSError, ssl.SSLError) as exc:
        raise InvalidArgument(f"cannot load TLS files (cert {cert!r}, key {key!r}, ca {ca!r}): {exc}") from None
    return ctx


def client_context(cert: Optional[str] = None, key: Optional[str] = None, ca: Optional[str] = None
                   ) -> ssl.SSLContext:
    _check(cert, key)
    try:
        ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=ca)
        if cert is not None:
            ctx.load_cert_chain(cert, key)
    except (OSError, ssl.SSLError) as exc:
        raise InvalidArgument(f"cannot load TLS files (cert {cert!r}, key {key!r}, ca {ca!r}): {exc}") from None
    return ctx
