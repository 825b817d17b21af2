"""Bearer tokens from the JSON file named by LANDFLOW_TOKENS_FILE.

The file maps token -> {"role": ..., "district": ..., "subject": ...}; district is
required for district roles and ignored otherwise. Tokens are compared in constant
time and never logged.
"""

from __future__ import annotations

import hmac
import json
from pathlib import Path

from pydantic import BaseModel, ValidationError, model_validator

from landflow.contracts import DISTRICT_ROLES, Actor, Role


class TokenEntry(BaseModel):
    role: Role
    district: str | None = None
    subject: str = ""

    @model_validator(mode="after")
    def _district_for_district_roles(self) -> TokenEntry:
        if self.role in DISTRICT_ROLES and not self.district:
            raise ValueError(f"{self.role.value} tokens need a district")
        if self.role not in DISTRICT_ROLES:
            self.district = None
        return self


class TokenFileError(ValueError):
    pass


class TokenStore:
    def __init__(self, entries: dict[str, TokenEntry]) -> None:
        self._entries = [(token.encode(), entry) for token, entry in entries.items()]

    @classmethod
    def from_file(cls, path: Path | None) -> TokenStore:
        if path is None:
            return cls({})
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
            if not isinstance(raw, dict):
                raise TokenFileError(f"{path}: expected an object mapping token -> role")
            entries = {str(t): TokenEntry.model_validate(e) for t, e in raw.items()}
        except (OSError, json.JSONDecodeError, ValidationError) as exc:
            raise TokenFileError(f"{path}: {exc}") from exc
        return cls(entries)

    def actor(self, token: str) -> Actor | None:
        """Look a token up without an early exit, so timing does not reveal a prefix."""
        presented = token.encode()
        found: TokenEntry | None = None
        for known, entry in self._entries:
            if hmac.compare_digest(known, presented):
                found = entry
        if found is None:
            return None
        subject = found.subject or (
            f"{found.role.value}@{found.district}" if found.district else found.role.value
        )
        return Actor(role=found.role, district=found.district, subject=subject)
