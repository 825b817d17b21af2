"""The words of DOMAIN.md: roles, stages, steps, actions, districts.

Clients, the workflow, the rules and the registry all speak these ids; keep them.
"""

from __future__ import annotations

from datetime import timedelta, timezone
from enum import StrEnum


class Role(StrEnum):
    reserve_agency = "reserve_agency"
    land_user = "land_user"
    district_government = "district_government"
    district_epb = "district_epb"
    city_epb = "city_epb"
    planning_land = "planning_land"
    responsible_party = "responsible_party"
    third_party_evaluator = "third_party_evaluator"
    auditor = "auditor"
    ops = "ops"
    public = "public"


# Roles that act for one district only: their tokens carry a district and they may act
# only on parcels (or transports) of that district.
DISTRICT_ROLES = frozenset({Role.district_government, Role.district_epb})
# Roles held by companies: their tokens carry a party (统一社会信用代码) and they may act
# only on parcels that party is bound to (Law 45, 60, 65; BJ 17, 28, 30).
PARTY_ROLES = frozenset({Role.land_user, Role.responsible_party, Role.third_party_evaluator})

ROLE_ZH: dict[Role, str] = {
    Role.reserve_agency: "土地储备机构",
    Role.land_user: "土地使用权人",
    Role.district_government: "区政府",
    Role.district_epb: "区生态环境局",
    Role.city_epb: "市生态环境局",
    Role.planning_land: "市规划和自然资源委",
    Role.responsible_party: "土壤污染责任人",
    Role.third_party_evaluator: "第三方评估机构",
    Role.auditor: "审计",
    Role.ops: "运维",
    Role.public: "公众",
}


class Stage(StrEnum):
    """The stages of DOMAIN.md's lifecycle, plus the terminal `released`."""

    intake = "intake"
    closure_screening = "closure_screening"
    investigation = "investigation"
    filing = "filing"
    risk_assessment = "risk_assessment"
    listing = "listing"
    risk_control = "risk_control"
    remediation = "remediation"
    evaluation = "evaluation"
    release = "release"
    released = "released"


STAGE_ZH: dict[Stage, str] = {
    Stage.intake: "登记",
    Stage.closure_screening: "关停企业筛查",
    Stage.investigation: "土壤污染状况调查",
    Stage.filing: "调查报告评审",
    Stage.risk_assessment: "风险评估",
    Stage.listing: "列入名录",
    Stage.risk_control: "风险管控",
    Stage.remediation: "治理修复",
    Stage.evaluation: "效果评估",
    Stage.release: "移出名录与供地",
    Stage.released: "已放行",
}


class Step(StrEnum):
    """A waiting point inside a stage: who owes which actions by a deadline."""

    closure_screening = "closure_screening"
    investigation = "investigation"
    filing_review = "filing_review"
    risk_assessment = "risk_assessment"
    determination = "determination"
    determination_concurrence = "determination_concurrence"
    risk_assessment_review = "risk_assessment_review"
    choose_path = "choose_path"
    control_measures = "control_measures"
    monitoring = "monitoring"
    isolation = "isolation"
    remediation_plan = "remediation_plan"
    plan_filing = "plan_filing"
    works = "works"
    transport_acknowledgement = "transport_acknowledgement"
    commission_evaluator = "commission_evaluator"
    evaluation = "evaluation"
    spot_check = "spot_check"
    removal_application = "removal_application"
    removal_review = "removal_review"
    release = "release"


class Action(StrEnum):
    closure_screening = "closure_screening"
    investigation_report = "investigation_report"
    filing_review = "filing_review"
    risk_assessment_report = "risk_assessment_report"
    responsibility_determination = "responsibility_determination"
    risk_assessment_review = "risk_assessment_review"
    choose_path = "choose_path"
    control_measures = "control_measures"
    monitoring_result = "monitoring_result"
    isolation_measures = "isolation_measures"
    risk_control_completed = "risk_control_completed"
    remediation_plan = "remediation_plan"
    plan_filing_review = "plan_filing_review"
    soil_transport = "soil_transport"
    transport_acknowledgement = "transport_acknowledgement"
    secondary_pollution_inspection = "secondary_pollution_inspection"
    works_completed = "works_completed"
    commission_evaluator = "commission_evaluator"
    evaluation = "evaluation"
    spot_check = "spot_check"
    removal_application = "removal_application"
    removal_review = "removal_review"
    release = "release"


# --- districts ------------------------------------------------------------------------

# Beijing's 16 districts (BJ 四(二): each reports its year to the city EPB). Deployments
# for another city add theirs with `add_districts` at start-up (LANDFLOW_EXTRA_DISTRICTS).
BEIJING_DISTRICTS = (
    "东城区",
    "西城区",
    "朝阳区",
    "丰台区",
    "石景山区",
    "海淀区",
    "门头沟区",
    "房山区",
    "通州区",
    "顺义区",
    "昌平区",
    "大兴区",
    "怀柔区",
    "平谷区",
    "密云区",
    "延庆区",
)
_districts: dict[str, None] = dict.fromkeys(BEIJING_DISTRICTS)


def districts() -> tuple[str, ...]:
    return tuple(_districts)


def add_districts(names: list[str] | tuple[str, ...]) -> None:
    """Extend the district table (a composition root does this once, from settings)."""
    for name in names:
        if name.strip():
            _districts[name.strip()] = None


def check_district(value: str) -> str:
    if value not in _districts:
        raise ValueError(
            f"unknown district {value!r}; districts are {', '.join(_districts)} "
            "(another city's districts are added with LANDFLOW_EXTRA_DISTRICTS)"
        )
    return value


CITY = "city"  # the scope of the city EPB's annual report, over every district
BEIJING_TIME = timezone(timedelta(hours=8), "Asia/Shanghai")  # no DST: a fixed offset is exact
