"""Bearer tokens: issued once, stored as SHA-256 digests, checked on every request.

Tokens are 256 random bits (``secrets.token_urlsafe``), so a fast unsalted digest is enough: a
slow password hash (bcrypt, argon2) protects *guessable* secrets, and these are not. The clear
token exists only in the response that creates it; it is never logged or stored.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass

from sqlalchemy import select

from automl.errors import UserError
from automl.service.store import Store, Token, User

PREFIX = "automl_"


def digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Principal:
    """Who is calling: a user, and whether they may see every experiment."""

    user_id: int
    name: str
    is_admin: bool


def issue(store: Store, name: str, admin: bool = False) -> str:
    """A new token for user ``name`` (created if absent, as admin when ``admin``); returns it."""
    if not name or len(name) > 100 or not name.replace("-", "").replace("_", "").replace(".", "").isalnum():
        raise UserError(f"user name {name!r}: use letters, digits, '-', '_' or '.' (at most 100)")
    token = PREFIX + secrets.token_urlsafe(32)
    with store.session() as session:
        user = session.scalar(select(User).where(User.name == name))
        if user is None:
            user = User(name=name, is_admin=admin)
            session.add(user)
            session.flush()
        elif admin and not user.is_admin:
            user.is_admin = True
        session.add(Token(user_id=user.id, digest=digest(token)))
    return token


def ensure_admin(store: Store) -> str | None:
    """A new admin token (printed once by the caller) when the store has no admin yet, even if
    user tokens were created before the first start; None when an admin exists."""
    with store.session() as session:
        if session.scalar(select(User.id).where(User.is_admin.is_(True)).limit(1)) is not None:
            return None
    return issue(store, "admin", admin=True)


def authenticate(store: Store, token: str) -> Principal | None:
    wanted = digest(token)
    with store.session() as session:
        row = session.execute(
            select(Token.digest, User.id, User.name, User.is_admin)
            .join(User, User.id == Token.user_id)
            .where(Token.digest == wanted, Token.revoked.is_(None))).first()
    if row is None or not hmac.compare_digest(row[0], wanted):
        return None
    return Principal(row[1], row[2], row[3])


def list_tokens(store: Store) -> list[dict]:
    with store.session() as session:
        rows = session.execute(
            select(Token.id, User.name, User.is_admin, Token.created, Token.revoked)
            .join(User, User.id == Token.user_id).order_by(Token.id)).all()
    return [{"id": r[0], "user": r[1], "admin": r[2], "created": r[3], "revoked": r[4]}
            for r in rows]


def revoke(store: Store, token_id: int) -> None:
    with store.session() as session:
        token = session.get(Token, token_id)
        if token is None:
            raise UserError(f"token {token_id}: no such token (see `automl token list`)")
        token.revoked = token.revoked or time.time()
