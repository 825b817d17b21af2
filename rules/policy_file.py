"""The policy file (YAML): parsed and checked once, then handed to workflows."""

from __future__ import annotations

from pathlib import Path

import yaml
from pydantic import ValidationError

from landflow.policy import Policy


class PolicyError(ValueError):
    pass


def load_policy(path: Path) -> Policy:
    """The policy in `path`; a bad file raises PolicyError naming the file and the problem."""
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        return Policy.model_validate(raw)
    except (OSError, yaml.YAMLError, ValidationError) as exc:
        raise PolicyError(f"{path}: {exc}") from exc
