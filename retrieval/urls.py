"""URLs made safe to show: a key written into a base URL never reaches output, logs or stored answers."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

MASK = "***"


def redact_url(url: str) -> str:
    """``url`` with its password (or a lone user name, often a key), query values and fragment masked."""
    parts = urlsplit(url)
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, _, host = netloc.rpartition("@")
        user, has_password, _ = userinfo.partition(":")
        netloc = f"{user}:{MASK}@{host}" if has_password else f"{MASK}@{host}"
    query = parse_qsl(parts.query, keep_blank_values=True)
    masked = urlencode([(name, MASK) for name, _ in query], safe="*")
    return urlunsplit((parts.scheme, netloc, parts.path, masked, MASK if parts.fragment else ""))
