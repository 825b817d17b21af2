"""The README's tables that come from the code: `python -m service.readme` prints them,
and tests/unit/core/test_readme.py checks the README holds exactly these (so the
procedure is declared once, in landflow/procedure.py, and documented from there)."""

from __future__ import annotations

from landflow.documents import DOCUMENT_KIND_ZH
from landflow.policy import Policy
from landflow.procedure import PROCEDURE, RULE_SEQUENCE, STAGE_ORDER, STEPS, StepSpec
from landflow.settings import PACKAGE_DIR
from landflow.vocabulary import STAGE_ZH
from rules.policy_file import load_policy

BEGIN, END = "<!-- procedure-table:begin -->", "<!-- procedure-table:end -->"


def _owners(spec: StepSpec) -> str:
    parts = []
    for answer in spec.answers:
        label = f"`{answer.action.value}` ({answer.by.value})"
        if not answer.ends_step:
            label += ", during the step"
        if answer.only_after:
            label += f", after {answer.only_after.replace('_', ' ')}"
        parts.append(label)
    return "; ".join(dict.fromkeys(parts))


def _rules(spec: StepSpec) -> str:
    if spec.rules_after is None:
        return "—"
    return ", ".join(dict.fromkeys(call.rule for call in RULE_SEQUENCE[spec.rules_after]))


def procedure_table(policy: Policy) -> str:
    lines = [
        "| stage | step | who, with which action | deadline (days) | documents required "
        "| rules after | clause |",
        "|---|---|---|---:|---|---|---|",
    ]
    for stage in STAGE_ORDER:
        for spec in (s for s in STEPS if s.stage == stage):
            joint = " (joint review: both, either first)" if spec.joint else ""
            side = " (side task: does not hold the works)" if not spec.blocking else ""
            kinds = sorted({k.value for a in spec.actions() for k in policy.required_documents(a)})
            lines.append(
                f"| {stage.value} {STAGE_ZH[stage]} "
                f"| `{spec.step.value}` {spec.title_zh}{joint}{side} "
                f"| {_owners(spec)} | {policy.steps[spec.step].days:g} | {', '.join(kinds) or '—'} "
                f"| {_rules(spec)} | {spec.clause} |"
            )
    return "\n".join(lines)


def document_kinds() -> str:
    return ", ".join(f"`{k.value}` {zh}" for k, zh in DOCUMENT_KIND_ZH.items())


def generated() -> str:
    policy = load_policy(PACKAGE_DIR / "policy.yaml")
    assert set(PROCEDURE) == {s.step for s in STEPS}
    return f"{BEGIN}\n{procedure_table(policy)}\n{END}"


if __name__ == "__main__":
    print(generated())
