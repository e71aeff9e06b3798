"""What a request may be, checked at the door: size, numbers, strings, YAML, page headers.

Everything here is cheap and runs before any other work, so that one hostile request costs the
server (and every other user of it) nothing: a 10 MB body is refused while it is read, a NaN
never reaches pydantic (whose error message would echo it into JSON that cannot hold it, a 500),
and a YAML alias bomb is refused before it expands. Each refusal is a 4xx whose one line names
the field (``loc``), as pydantic's own 422s do.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import yaml
from starlette.types import ASGIApp, Message, Receive, Scope, Send

MAX_STRING = 4096  # characters in any string of a body (a key, an override value, a path)
MAX_NAME = 100  # an experiment's name (its folder name is shorter still: FOLDER_NAME)
FOLDER_NAME = 40  # characters of the name kept in the workspace folder's name
MAX_DEPTH = 32  # nesting of a JSON or YAML document


@dataclass(frozen=True)
class Limits:
    """What one experiment may ask of the server (``automl serve --limit-*``)."""

    body_bytes: int = 1 << 20
    recommendations: int = 1000
    epochs: int = 1000
    concurrent: int = 64
    retries: int = 10


class BadInput(Exception):
    """A request the server refuses (HTTP 422, or ``status``); ``loc`` names the field."""

    def __init__(self, loc: str, message: str, status: int = 422) -> None:
        super().__init__(message)
        self.loc = loc
        self.status = status

    def body(self) -> dict[str, Any]:
        return {"detail": [{"loc": ["body", self.loc], "msg": str(self),
                            "type": "value_error"}]}


def leaves(value: Any, loc: tuple[str, ...], depth: int = 0) -> Iterator[tuple[tuple[str, ...], Any]]:
    """Every (location, leaf) of a JSON-like document, keys included as leaves of their own."""
    if depth > MAX_DEPTH:
        raise BadInput(".".join(loc), f"nested deeper than {MAX_DEPTH} levels")
    if isinstance(value, dict):
        for key, item in value.items():
            yield (*loc, str(key)), str(key)
            yield from leaves(item, (*loc, str(key)), depth + 1)
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            yield from leaves(item, (*loc, str(index)), depth + 1)
    else:
        yield loc, value


def check_numbers(document: Any, loc: tuple[str, ...] = ()) -> None:
    """Refuse NaN and ±Infinity anywhere: no setting means them, and JSON cannot carry them back."""
    for where, leaf in leaves(document, loc):
        if isinstance(leaf, float) and not math.isfinite(leaf):
            raise BadInput(".".join(where) or "body",
                           f"{leaf} is not a finite number; give a finite value")


def check_strings(document: Any, loc: tuple[str, ...] = (), limit: int = MAX_STRING) -> None:
    """Refuse any key or string longer than ``limit`` characters (names, paths, overrides)."""
    for where, leaf in leaves(document, loc):
        if isinstance(leaf, str) and len(leaf) > limit:
            raise BadInput(".".join(where) or "body",
                           f"{len(leaf)} characters: at most {limit} are accepted here")


def refuse_yaml_aliases(text: str, loc: str) -> None:
    """Refuse YAML anchors and aliases before the text is loaded.

    An alias repeats a whole subtree, so a few hundred bytes of nested aliases expand into
    megabytes (the "billion laughs"); a study file never needs them. The scan reads PyYAML's
    event stream, linear in the text, so the refusal costs no more than the text's length.
    """
    try:
        for event in yaml.parse(text, Loader=yaml.SafeLoader):
            if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None):
                raise BadInput(loc, f"line {event.start_mark.line + 1}: YAML anchors and aliases "
                               f"(&name, *name) are not accepted; write the values out")
    except yaml.YAMLError:
        return  # the loader reports the syntax error, with its line and column


def _refusal(status: int, loc: str, message: str) -> list[Message]:
    body = json.dumps(BadInput(loc, message).body()).encode()
    return [{"type": "http.response.start", "status": status,
             "headers": [(b"content-type", b"application/json"),
                         (b"content-length", str(len(body)).encode())]},
            {"type": "http.response.body", "body": body}]


class BodyGuard:
    """ASGI middleware: a body over ``max_bytes`` is 413 (refused while it is read, before it is
    stored), and a JSON body holding NaN, ±Infinity or nesting deeper than :data:`MAX_DEPTH` is
    422 before any route or validator sees it."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        too_big = f"the request body is over {self.max_bytes} bytes"
        declared = headers.get(b"content-length", b"0")
        if declared.isdigit() and int(declared) > self.max_bytes:
            return await self._send(send, _refusal(413, "body", too_big))
        chunks, size, more = [], 0, True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            if size > self.max_bytes:
                return await self._send(send, _refusal(413, "body", too_big))
            more = message.get("more_body", False)
        body = b"".join(chunks)
        if b"json" in headers.get(b"content-type", b"") and body:
            try:
                check_numbers(json.loads(body))
            except BadInput as exc:
                return await self._send(send, _refusal(422, exc.loc, str(exc)))
            except RecursionError:
                return await self._send(send, _refusal(422, "body", f"nested deeper than "
                                                                    f"{MAX_DEPTH} levels"))
            except ValueError:
                pass  # not JSON: FastAPI answers with its own 422 (json_invalid)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)

    @staticmethod
    async def _send(send: Send, messages: list[Message]) -> None:
        for message in messages:
            await send(message)


# The web page loads only its own files; its inline ``style=`` attributes (trial colours) need
# 'unsafe-inline' for styles, never for scripts. /docs and /redoc start their bundles with an
# inline script (FastAPI's pages) and ReDoc runs a worker from a blob.
PAGE_CSP = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
            "img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; "
            "form-action 'self'; object-src 'none'")
DOCS_CSP = ("default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' "
            "'unsafe-inline'; img-src 'self' data:; connect-src 'self'; worker-src 'self' blob:; "
            "frame-ancestors 'none'; base-uri 'none'; object-src 'none'")
DOCS_PATHS = ("/docs", "/redoc")


class SecurityHeaders:
    """ASGI middleware: CSP, X-Frame-Options and X-Content-Type-Options on every response, so no
    page of the server can be framed by another site or load anything from another host."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        csp = DOCS_CSP if scope["path"].startswith(DOCS_PATHS) else PAGE_CSP

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []),
                                      (b"content-security-policy", csp.encode()),
                                      (b"x-frame-options", b"DENY"),
                                      (b"x-content-type-options", b"nosniff"),
                                      (b"referrer-policy", b"no-referrer")]
            await send(message)

        await self.app(scope, receive, with_headers)
