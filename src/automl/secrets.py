"""Which values are secrets and must never be logged, displayed or tracked.

TAO specs carry ``encryption_key``; users pass tokens and passwords through overrides. A key is
secret when its last dotted component matches a secret pattern, whatever the skill calls it.
"""

from __future__ import annotations

import re

_SECRET = re.compile(r"(encryption_?key|token|secret|passw(or)?d|api_?key|access_?key|credential"
                     r"|private_?key|auth)", re.I)


def is_secret_key(key: str) -> bool:
    return bool(_SECRET.search(key.rsplit(".", 1)[-1]))


def redact_uri(uri: str) -> str:
    """A URI safe to print: ``http://user:pw@host`` → ``http://user:***@host``."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(uri)
    if parts.password is None:
        return uri
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))
