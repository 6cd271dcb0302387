"""Service endpoint URLs: "h:p" or "http(s)://h:p[/]" (HTTP API), or "orf(s)://h:p" (the binary
client protocol, serve --client), normalized to "scheme://h:p"."""
from __future__ import annotations

from urllib.parse import urlsplit

from openraft_fast.errors import InvalidArgument, InvalidArgumentType


def normalize_endpoint(url: str) -> str:
    """The endpoint as "scheme://host:port"; InvalidArgument for anything else (a path, a
    query, no port, another scheme)."""
    if not isinstance(url, str):
        raise InvalidArgumentType(f"an endpoint must be a str URL, got {type(url).__name__}")
    text = url.strip()
    if "://" not in text:
        text = "http://" + text
    try:
        u = urlsplit(text)
        port = u.port
    except ValueError:
        raise InvalidArgument(f"bad endpoint {url!r}: expected http://HOST:PORT (or https://, orf://, orfs://)") from None
    if u.scheme not in ("http", "https", "orf", "orfs") or not u.hostname or port is None or u.path not in ("", "/") \
            or u.query or u.fragment or u.username or u.password:
        raise InvalidArgument(f"bad endpoint {url!r}: expected http://HOST:PORT (or https://, orf://, orfs://)")
    host = f"[{u.hostname}]" if ":" in u.hostname else u.hostname
    return f"{u.scheme}://{host}:{port}"


def missing_service_dependency() -> str:
    """"" when the service extra is installed, else a one-line hint."""
    try:
        import aiohttp  # noqa: F401
        import prometheus_client  # noqa: F401
    except ImportError as exc:
        return f"{exc.name} is not installed: pip install 'openraft-fast[kv]'"
    return ""
