"""Signing in to the workbench: who the caller is, kept in a signed session cookie.

- The identity source is a small protocol: `TokenIdentity` signs in with a token of the
  tokens file; a single-sign-on source would return an `Identity` from its own
  credential (an OIDC code, a SAML assertion) and resolve the key it chose the same way.
- The cookie holds the source's key (for tokens `auth.digest(token)`, never the token),
  a CSRF token for the session, a random session id, and its expiry, signed with
  itsdangerous under `settings.session_key`; it is HttpOnly, SameSite=Lax, scoped to /ui,
  and Secure under `settings.secure_cookies` or when the request came over HTTPS (uvicorn
  believes `X-Forwarded-Proto` only from `forwarded_allow_ips`). The actor is resolved
  again on every request, so a revoked token ends the session.
- The session is open while the registry holds its row (`web_sessions`, keyed by the
  SHA-256 of the session id); signing out deletes it, so a copied cookie stops working
  although its signature and expiry are still good. A lost registry signs everyone out.
- Before sign-in the login form is protected by a double-submit token in a cookie of
  its own (`/ui/login` only).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol, cast

from fastapi import Request, Response
from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlalchemy.engine import Engine
from sqlmodel import Session as DbSession

from api.auth import TokenStore, digest
from landflow.messages import Actor
from registry import web_sessions

SESSION_COOKIE = "landflow_session"
LOGIN_COOKIE = "landflow_login"
SESSION_TTL_S = 8 * 3600  # a working day; signing in again is cheap
LOGIN_TTL_S = 3600
COOKIE_PATH = "/ui"
CSRF_FIELD = "csrf_token"


@dataclass(frozen=True)
class Identity:
    """Who signed in: what the cookie may keep (`key`, never the credential) and the actor."""

    key: str
    actor: Actor


class IdentitySource(Protocol):
    name: str

    def sign_in(self, credential: str) -> Identity | None: ...

    def actor(self, key: str) -> Actor | None: ...


class TokenIdentity:
    """The deployment's tokens file as the identity source."""

    name = "token"

    def __init__(self, tokens: TokenStore) -> None:
        self.tokens = tokens

    def sign_in(self, credential: str) -> Identity | None:
        token = credential.strip()
        if not token:
            return None
        actor = self.tokens.actor(token)
        return Identity(key=digest(token), actor=actor) if actor else None

    def actor(self, key: str) -> Actor | None:
        return self.tokens.actor_by_digest(key)


def identity_source(request: Request) -> IdentitySource:
    """`app.state.identity` if a deployment installed one (SSO), else the tokens file."""
    source = getattr(request.app.state, "identity", None)
    return source if source is not None else TokenIdentity(request.app.state.tokens)


@dataclass(frozen=True)
class Session:
    actor: Actor
    csrf: str
    key: str


def _serializer(request: Request, salt: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(request.app.state.settings.session_key, salt=salt)


def secure(request: Request) -> bool:
    """Mark cookies Secure: the deployment says so, or this request came over HTTPS."""
    return bool(request.app.state.settings.secure_cookies) or request.url.scheme == "https"


SESSION_SALT = "landflow.web.session"


def _digest(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


def issue(
    engine: Engine, session_key: str, key: str, source: str = TokenIdentity.name
) -> tuple[str, str]:
    """Open a session for the identity `key` in the registry; (the cookie's value, its
    CSRF token). The cookie carries the identity key, the CSRF token, the source and the
    session id, signed."""
    session_id, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    expires_at = datetime.now(UTC) + timedelta(seconds=SESSION_TTL_S)
    with DbSession(engine) as db:
        web_sessions.open_session(db, session_id=_digest(session_id), expires_at=expires_at)
    value = URLSafeTimedSerializer(session_key, salt=SESSION_SALT).dumps(
        {"k": key, "c": csrf, "i": source, "s": session_id}
    )
    return value, csrf


def start(request: Request, response: Response, identity: Identity) -> Session:
    """Set the session cookie for a fresh sign-in (a new session and CSRF token)."""
    value, csrf = issue(
        request.app.state.engine,
        request.app.state.settings.session_key,
        identity.key,
        identity_source(request).name,
    )
    response.set_cookie(
        SESSION_COOKIE,
        value,
        max_age=SESSION_TTL_S,
        path=COOKIE_PATH,
        httponly=True,
        samesite="lax",
        secure=secure(request),
    )
    response.delete_cookie(LOGIN_COOKIE, path=f"{COOKIE_PATH}/login")
    return Session(actor=identity.actor, csrf=csrf, key=identity.key)


def end(request: Request, response: Response) -> None:
    """Sign out: the session ends on the server (whoever holds a copy of the cookie) and
    the browser forgets the cookie."""
    data = _signed(request)
    if data is not None:
        with DbSession(request.app.state.engine) as db:
            web_sessions.close_session(db, session_id=_digest(data["s"]))
    response.delete_cookie(SESSION_COOKIE, path=COOKIE_PATH, secure=secure(request))


def _signed(request: Request) -> dict[str, str] | None:
    """The session cookie's content if it is ours, unexpired and well formed."""
    raw = request.cookies.get(SESSION_COOKIE)
    if not raw:
        return None
    try:
        data = _serializer(request, SESSION_SALT).loads(raw, max_age=SESSION_TTL_S)
    except BadSignature:
        return None
    if not isinstance(data, dict) or not all(isinstance(data.get(f), str) for f in "kcis"):
        return None
    return data


def current(request: Request) -> Session | None:
    """The signed-in caller, or None (no cookie, bad signature, expired, signed out,
    revoked); looked up once per request."""
    if hasattr(request.state, "web_session"):
        return cast(Session | None, request.state.web_session)
    found = None
    data = _signed(request)
    source = identity_source(request)
    if data is not None and data["i"] == source.name:
        with DbSession(request.app.state.engine) as db:
            opened = web_sessions.is_open(db, session_id=_digest(data["s"]))
        actor = source.actor(data["k"]) if opened else None
        found = Session(actor=actor, csrf=data["c"], key=data["k"]) if actor else None
    request.state.web_session = found
    return found


def csrf_valid(session: Session, presented: str | None) -> bool:
    return bool(presented) and hmac.compare_digest(session.csrf, str(presented))


# --- the login form's own CSRF token (no session yet) ---------------------------------


def new_login_token() -> str:
    return secrets.token_urlsafe(24)


def set_login_cookie(request: Request, response: Response, token: str) -> None:
    """The login form carries `token`; the same value, signed, goes in a cookie."""
    response.set_cookie(
        LOGIN_COOKIE,
        _serializer(request, "landflow.web.login").dumps(token),
        max_age=LOGIN_TTL_S,
        path=f"{COOKIE_PATH}/login",
        httponly=True,
        samesite="strict",
        secure=secure(request),
    )


def login_token_valid(request: Request, presented: str | None) -> bool:
    raw = request.cookies.get(LOGIN_COOKIE)
    if not raw or not presented:
        return False
    try:
        expected = _serializer(request, "landflow.web.login").loads(raw, max_age=LOGIN_TTL_S)
    except BadSignature:
        return False
    return isinstance(expected, str) and hmac.compare_digest(expected, str(presented))
