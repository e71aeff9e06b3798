"""Which values are secrets, and every way the engine hides them: the one place for redaction.

TAO specs carry ``encryption_key``; users pass tokens and passwords through overrides. A key is
secret when its last dotted component matches a secret pattern, whatever the skill calls it.
What is logged, displayed, tracked or streamed goes through one of these functions:

* :func:`redact` - a flat ``{key: value}`` (trial params on screen, best_rec.json);
* :func:`redact_tree` - nested documents (settings, specs), collecting the secret values seen;
* :func:`redact_text` - free text (logs, messages): literal secret values and URI passwords;
* :func:`redact_assignments` - free text with ``key=value`` / ``key: value`` in it;
* :func:`redact_spec_text` - a spec file's text, parseable or not;
* :func:`redact_space_rows` - search-space rows whose parameter name is secret;
* :func:`redact_uri` - a URI with a password.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

import yaml

REDACTED = "***"

_SECRET = re.compile(r"(encryption_?key|token|secret|passw(or)?d|api_?key|access_?key|credential"
                     r"|private_?key|auth)", re.I)
# "KEY=VALUE" list items (--set / --pin lists in the settings).
_LIST_ASSIGNMENT = re.compile(r"^\s*([\w.\-]+)\s*=(.*)$", re.S)
# "key=value" / "key: value" anywhere in free text.
_TEXT_ASSIGNMENT = re.compile(r"([A-Za-z_][\w.\-]*)(\s*[=:]\s*)(\"[^\"]*\"|'[^']*'|[^\s,;]+)")
# "key: value" lines of a YAML-like text.
_YAML_LINE = re.compile(r"^(\s*-?\s*)([\w.\-]+)(\s*:\s*)(.+)$")
_URI_PASSWORD = re.compile(r"(://[^/:@\s]+):[^/@\s]+@")


def is_secret_key(key: str) -> bool:
    return bool(_SECRET.search(key.rsplit(".", 1)[-1]))


def redact(values: Mapping[str, Any]) -> dict[str, Any]:
    """A copy with secret values replaced, for anything that is logged or displayed."""
    return {k: (REDACTED if is_secret_key(k) else v) for k, v in values.items()}


def redact_tree(value: Any, secrets: set[str] | None = None, key: str = "") -> Any:
    """A copy of ``value`` with every secret-keyed entry replaced by ``***``.

    Secret values found are added to ``secrets`` (for literal redaction of free text); strings
    of the form ``KEY=VALUE`` with a secret KEY (``--set``/``--pin`` lists) are redacted too.
    """
    if isinstance(value, dict):
        out: dict[Any, Any] = {}
        for k, v in value.items():
            name = str(k)
            if is_secret_key(name) and v not in (None, ""):
                _collect(v, secrets)
                out[k] = REDACTED
            else:
                out[k] = redact_tree(v, secrets, name)
        return out
    if isinstance(value, (list, tuple)):
        return [redact_tree(v, secrets, key) for v in value]
    if isinstance(value, str):
        match = _LIST_ASSIGNMENT.match(value)
        if match and is_secret_key(match.group(1)) and match.group(2).strip():
            _collect(match.group(2).strip(), secrets)
            return f"{match.group(1)}={REDACTED}"
        return _URI_PASSWORD.sub(rf"\1:{REDACTED}@", value)
    return value


def secret_values(document: Any) -> set[str]:
    """The values of the secret keys in ``document`` (for :func:`redact_text`)."""
    found: set[str] = set()
    redact_tree(document, found)
    return found


def _collect(value: Any, secrets: set[str] | None) -> None:
    if secrets is None:
        return
    if isinstance(value, dict):
        for v in value.values():
            _collect(v, secrets)
    elif isinstance(value, (list, tuple)):
        for v in value:
            _collect(v, secrets)
    elif value is not None and not isinstance(value, bool):
        text = str(value).strip()
        if len(text) >= 3:  # shorter "secrets" would shred unrelated text
            secrets.add(text)


def redact_text(text: str, secrets: Iterable[str]) -> str:
    """Replace every literal occurrence of a secret value (longest first) and every URI password
    with ``***``."""
    for secret in sorted(secrets, key=len, reverse=True):
        if secret in text:
            text = text.replace(secret, REDACTED)
    return _URI_PASSWORD.sub(rf"\1:{REDACTED}@", text)


def redact_assignments(text: str) -> str:
    """Hide the value in ``key=value`` / ``key: value`` when the key names a secret."""
    def one(m: re.Match[str]) -> str:
        key, sep, value = m.groups()
        if is_secret_key(key):
            return f"{key}{sep}{REDACTED}"
        # "error: encryption_key=..." : the value of a harmless key may hold the assignment.
        return f"{key}{sep}{redact_assignments(value) if value != m.group(0) else value}"

    return _TEXT_ASSIGNMENT.sub(one, text)


def redact_spec_text(text: str, secrets: set[str] | None = None) -> str:
    """A spec file's text with secret values hidden (collected into ``secrets``); a text YAML
    cannot parse is redacted line by line (``secret_key: value`` lines)."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError:
        lines = []
        for line in text.splitlines():
            match = _YAML_LINE.match(line)
            if match and is_secret_key(match.group(2)):
                _collect(match.group(4).strip().strip("'\""), secrets)
                line = f"{match.group(1)}{match.group(2)}{match.group(3)}{REDACTED}"
            lines.append(line)
        return "\n".join(lines) + "\n"
    return yaml.safe_dump(redact_tree(data, secrets), sort_keys=False, default_flow_style=False)


def redact_space_rows(rows: Any) -> Any:
    """Space rows are ``{name, type, range, default, ...}``: a secret *name* hides its values."""
    if not isinstance(rows, list):
        return rows
    return [{k: (REDACTED if k in ("range", "default") else v) for k, v in row.items()}
            if isinstance(row, dict) and is_secret_key(str(row.get("name", ""))) else row
            for row in rows]


def redact_uri(uri: str) -> str:
    """A URI safe to print: ``http://user:pw@host`` → ``http://user:***@host``."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(uri)
    if parts.password is None:
        return uri
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))
