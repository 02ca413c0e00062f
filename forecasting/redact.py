"""The one redaction of secrets in URIs, DSNs and messages that may carry them."""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

MASK = "***"

#: Query/DSN keys whose values are secrets.
SECRET_KEYS = frozenset(
    {
        "password",
        "passwd",
        "pwd",
        "secret",
        "token",
        "access_token",
        "api_key",
        "apikey",
        "sslpassword",
    }
)

_URI = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"<>]+")
_USERINFO_PASSWORD = re.compile(r"(://[^/@:\s]*):[^/@\s]*@")
_KEY_VALUE = re.compile(
    r"\b(" + "|".join(sorted(SECRET_KEYS)) + r")(\s*=\s*)('[^']*'|\"[^\"]*\"|[^\s&;,'\"]+)",
    re.IGNORECASE,
)


def redact_uri(uri: str) -> str:
    """``uri`` with the password of its user info and any secret query value replaced by ``***``.

    Works on any scheme (``postgresql://u:pw@h/db?password=x``, ``https://…``); a string
    that does not parse as a URI is redacted as free text.
    """
    try:
        parts = urlsplit(uri)
    except ValueError:
        return redact(uri)
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, _, host = netloc.rpartition("@")
        if ":" in userinfo:
            user = userinfo.split(":", 1)[0]
            netloc = f"{user}:{MASK}@{host}"
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        if any(k.lower() in SECRET_KEYS for k, _ in pairs):
            query = urlencode(
                [(k, MASK if k.lower() in SECRET_KEYS else v) for k, v in pairs], safe="*"
            )
    if netloc == parts.netloc and query == parts.query:
        return uri  # nothing secret: keep the text as written (sqlite:////abs/path)
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def redact(text: str) -> str:
    """``text`` with every embedded URI redacted and ``password=…``-style values masked:
    what every log, error, body and dataset row that can quote a URI or a libpq DSN
    (``host=db password=secret``) passes through.
    """
    text = _URI.sub(lambda m: redact_uri(m.group(0)), text)
    text = _USERINFO_PASSWORD.sub(rf"\1:{MASK}@", text)
    return _KEY_VALUE.sub(lambda m: f"{m.group(1)}{m.group(2)}{MASK}", text)
