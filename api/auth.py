"""Bearer tokens from the JSON file named by LANDFLOW_TOKENS_FILE.

The file maps token -> {"role", "district", "party", "party_name", "subject"}: district
roles need a district, party roles (land user, responsible party, evaluator) need the
party's id (统一社会信用代码). Tokens are compared in constant time and never logged.
The file is read again when it changes (checked every `reload_s`, and on SIGHUP), so a
revoked token stops working within seconds; a bad new file keeps the last good one and
is reported.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import threading
import time
from pathlib import Path

from pydantic import BaseModel, Field, ValidationError, model_validator

from landflow.facts import PARTY_ID_PATTERN
from landflow.messages import Actor
from landflow.vocabulary import DISTRICT_ROLES, PARTY_ROLES, Role

log = logging.getLogger("landflow.auth")


class TokenEntry(BaseModel):
    role: Role
    district: str | None = None
    party: str | None = Field(default=None, pattern=PARTY_ID_PATTERN)
    party_name: str | None = Field(default=None, max_length=500)
    subject: str = Field(default="", max_length=200)

    @model_validator(mode="after")
    def _scoped(self) -> TokenEntry:
        if self.role in DISTRICT_ROLES and not self.district:
            raise ValueError(f"{self.role.value} tokens need a district")
        if self.role in PARTY_ROLES and not self.party:
            raise ValueError(f"{self.role.value} tokens need a party (统一社会信用代码)")
        if self.role not in DISTRICT_ROLES:
            self.district = None
        if self.role not in PARTY_ROLES:
            self.party = self.party_name = None
        return self

    def actor(self) -> Actor:
        subject = (
            self.subject
            or self.party_name
            or (f"{self.role.value}@{self.district}" if self.district else self.role.value)
        )
        return Actor(role=self.role, district=self.district, party=self.party, subject=subject)


class TokenFileError(ValueError):
    pass


def read_tokens(path: Path) -> dict[str, TokenEntry]:
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(raw, dict):
            raise TokenFileError(f"{path}: expected an object mapping token -> role")
        return {str(t): TokenEntry.model_validate(e) for t, e in raw.items()}
    except (OSError, json.JSONDecodeError, ValidationError) as exc:
        raise TokenFileError(f"{path}: {exc}") from exc


class TokenStore:
    def __init__(
        self, entries: dict[str, TokenEntry], path: Path | None = None, reload_s: float = 2.0
    ) -> None:
        self._path, self._reload_s = path, reload_s
        self._lock = threading.Lock()
        self._set(entries)
        self._checked = time.monotonic()
        self._stamp = self._file_stamp()

    @classmethod
    def from_file(cls, path: Path | None, reload_s: float = 2.0) -> TokenStore:
        return cls(read_tokens(path) if path else {}, path, reload_s)

    def _set(self, entries: dict[str, TokenEntry]) -> None:
        self._entries = [(token.encode(), entry) for token, entry in entries.items()]
        self._digests = [(digest(token).encode(), entry) for token, entry in entries.items()]

    def _file_stamp(self) -> tuple[float, int] | None:
        try:
            stat = self._path.stat() if self._path else None
        except OSError:
            return None
        return (stat.st_mtime, stat.st_size) if stat else None

    def reload(self) -> None:
        """Read the file again (SIGHUP, or a change seen by `_maybe_reload`)."""
        if self._path is None:
            return
        try:
            entries = read_tokens(self._path)
        except TokenFileError as exc:
            log.error("tokens file not reloaded, keeping the last good one: %s", exc)
            return
        with self._lock:
            self._set(entries)
        log.info("tokens reloaded: %d tokens", len(entries))

    def _maybe_reload(self) -> None:
        now = time.monotonic()
        if now - self._checked < self._reload_s:
            return
        self._checked = now
        stamp = self._file_stamp()
        if stamp != self._stamp:
            self._stamp = stamp
            self.reload()

    def actor(self, token: str) -> Actor | None:
        """Look a token up without an early exit, so timing does not reveal a prefix."""
        self._maybe_reload()
        presented = token.encode()
        found: TokenEntry | None = None
        for known, entry in self._entries:
            if hmac.compare_digest(known, presented):
                found = entry
        return found.actor() if found else None

    def actor_by_digest(self, token_digest: str) -> Actor | None:
        """The actor of a token known only by its digest (a workbench session keeps the
        digest, never the token; a revoked token ends the session)."""
        self._maybe_reload()
        presented = token_digest.encode()
        found: TokenEntry | None = None
        for known, entry in self._digests:
            if hmac.compare_digest(known, presented):
                found = entry
        return found.actor() if found else None


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()
