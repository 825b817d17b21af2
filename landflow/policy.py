"""The deadline policy file: parsed and checked once, then handed to workflows."""

from __future__ import annotations

from pathlib import Path

import yaml
from pydantic import ValidationError

from landflow.contracts import Policy, Step


class PolicyError(ValueError):
    pass


def load_policy(path: Path) -> Policy:
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        policy = Policy.model_validate(raw)
    except (OSError, yaml.YAMLError, ValidationError) as exc:
        raise PolicyError(f"{path}: {exc}") from exc
    missing = sorted(set(Step) - set(policy.steps))
    if missing:
        raise PolicyError(f"{path}: no deadline for steps {', '.join(missing)}")
    return policy
