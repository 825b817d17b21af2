"""Signing in to the workbench: who the caller is, kept in a signed session cookie.

- The identity source is a small protocol: `TokenIdentity` signs in with a token of the
  tokens file; a single-sign-on source would return an `Identity` from its own
  credential (an OIDC code, a SAML assertion) and resolve the key it chose the same way.
- The cookie holds the source's key (for tokens `auth.digest(token)`, never the token),
  a CSRF token for the session, and its expiry, signed with itsdangerous under
  `settings.session_key`; it is HttpOnly, SameSite=Lax, Secure on HTTPS, and scoped to
  /ui. The actor is resolved again on every request, so a revoked token ends the session.
- Before sign-in the login form is protected by a double-submit token in a cookie of
  its own (`/ui/login` only).
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass
from typing import Protocol

from fastapi import Request, Response
from itsdangerous import BadSignature, URLSafeTimedSerializer

from api.auth import TokenStore, digest
from landflow.messages import Actor

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


def _secure(request: Request) -> bool:
    return request.url.scheme == "https"


SESSION_SALT = "landflow.web.session"


def encode(session_key: str, key: str, csrf: str, source: str = TokenIdentity.name) -> str:
    """The cookie's value: the identity key, the session's CSRF token, the source."""
    return URLSafeTimedSerializer(session_key, salt=SESSION_SALT).dumps(
        {"k": key, "c": csrf, "i": source}
    )


def start(request: Request, response: Response, identity: Identity) -> Session:
    """Set the session cookie for a fresh sign-in (a new CSRF token every time)."""
    csrf = secrets.token_urlsafe(32)
    value = encode(
        request.app.state.settings.session_key, identity.key, csrf, identity_source(request).name
    )
    response.set_cookie(
        SESSION_COOKIE,
        value,
        max_age=SESSION_TTL_S,
        path=COOKIE_PATH,
        httponly=True,
        samesite="lax",
        secure=_secure(request),
    )
    response.delete_cookie(LOGIN_COOKIE, path=f"{COOKIE_PATH}/login")
    return Session(actor=identity.actor, csrf=csrf, key=identity.key)


def end(response: Response) -> None:
    response.delete_cookie(SESSION_COOKIE, path=COOKIE_PATH)


def current(request: Request) -> Session | None:
    """The signed-in caller, or None (no cookie, bad signature, expired, revoked)."""
    raw = request.cookies.get(SESSION_COOKIE)
    if not raw:
        return None
    try:
        data = _serializer(request, SESSION_SALT).loads(raw, max_age=SESSION_TTL_S)
    except BadSignature:
        return None
    source = identity_source(request)
    if not isinstance(data, dict) or data.get("i") != source.name:
        return None
    key, csrf = data.get("k"), data.get("c")
    if not isinstance(key, str) or not isinstance(csrf, str):
        return None
    actor = source.actor(key)
    return Session(actor=actor, csrf=csrf, key=key) if actor else None


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
        secure=_secure(request),
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
