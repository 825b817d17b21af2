"""Parcel facts in DOMAIN.md's vocabulary, and the small value objects they use.

Structure and ranges only: whether a sample's item is a GB 36600 item is a question for
`rules`, which knows the standards; this module imports nothing of the project.
"""

from __future__ import annotations

import itertools
import math
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from landflow.vocabulary import check_district

CurrentUse = Literal[
    "industrial",
    "gas_station",
    "auto_repair",
    "other_service",
    "farmland",
    "residential",
    "commercial",
    "public_service",
    "green_space",
    "unused",
]
Industry = Literal[
    "nonferrous_smelting",
    "petroleum_processing",
    "chemical",
    "coking",
    "electroplating",
    "pharmaceutical",
    "auto_manufacturing",
    "transport_equipment",
    "tanning",
    "hazardous_waste",
    "other",
]
RightStatus = Literal["held", "to_be_recovered", "recovered", "transferred"]
FarmlandClass = Literal["priority_protection", "safe_use", "strict_control"]
PolluterStatus = Literal["exists", "succeeded", "gone", "unknown", "disputed"]

# Parcel ids are the agency's codes: they name workflows (`parcel-<id>`) and URLs.
PARCEL_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]*$"
# A party is an organisation, named by its unified social credit code (统一社会信用代码,
# 18 characters); test and dev deployments use shorter codes, so only the alphabet is fixed.
PARTY_ID_PATTERN = r"^[0-9A-Z][0-9A-Z-]{1,39}$"


class Strict(BaseModel):
    """Bodies and facts refuse unknown fields, so a typo is a 422, not silently dropped."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, allow_inf_nan=False)

    @field_validator("*", mode="after")
    @classmethod
    def _keepable(cls, value: Any) -> Any:
        # PostgreSQL text cannot hold NUL: refused here (422 on the field), not in the
        # registry's projection, where it would retry forever.
        if _has_nul(value):
            raise ValueError("contains a NUL character (\\u0000)")
        return value


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, list | tuple | set | frozenset):
        return any(_has_nul(v) for v in value)
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    return False


def Text(**kw: Any) -> Any:
    return Field(min_length=1, max_length=kw.pop("max_length", 500), **kw)


def LongText(**kw: Any) -> Any:
    return Field(default="", max_length=kw.pop("max_length", 10_000), **kw)


class Party(Strict):
    """An organisation bound to a parcel in one role (land user, polluter, contractor...)."""

    id: str = Field(pattern=PARTY_ID_PATTERN, description="统一社会信用代码")
    name: str = Text()


class Polluter(Strict):
    id: str | None = Field(default=None, pattern=PARTY_ID_PATTERN)
    name: str | None = Field(default=None, min_length=1, max_length=500)
    status: PolluterStatus
    successor: str | None = Field(default=None, min_length=1, max_length=500)
    successor_id: str | None = Field(default=None, pattern=PARTY_ID_PATTERN)
    is_former_right_holder: bool = False

    @model_validator(mode="after")
    def _named_when_known(self) -> Polluter:
        # An unknown polluter has no name yet (DOMAIN.md); a known one must be named, and
        # one that may have to remediate must be identifiable (its credit code).
        if self.status != "unknown" and not self.name:
            raise ValueError(f"name is required when status is {self.status!r}")
        if self.status == "exists" and not self.id:
            raise ValueError("id (统一社会信用代码) is required when status is 'exists'")
        if self.status == "succeeded" and not (self.successor and self.successor_id):
            raise ValueError("successor and successor_id are required when status is 'succeeded'")
        return self


class Transferee(Strict):
    id: str = Field(pattern=PARTY_ID_PATTERN)
    name: str = Text()
    agreed_responsible: str | None = Field(default=None, min_length=1, max_length=500)
    agreed_responsible_id: str | None = Field(default=None, pattern=PARTY_ID_PATTERN)

    @model_validator(mode="after")
    def _agreed_party_identified(self) -> Transferee:
        if bool(self.agreed_responsible) != bool(self.agreed_responsible_id):
            raise ValueError("agreed_responsible and agreed_responsible_id go together")
        return self


class Location(Strict):
    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)


MAX_BOUNDARY_VERTICES = 500


class Boundary(Strict):
    """A GeoJSON Polygon or MultiPolygon: closed rings that do not cross themselves."""

    type: Literal["Polygon", "MultiPolygon"]
    coordinates: list[Any]

    @model_validator(mode="after")
    def _valid_rings(self) -> Boundary:
        polygons = [self.coordinates] if self.type == "Polygon" else self.coordinates
        rings = [ring for polygon in polygons for ring in _as_list(polygon, "polygon")]
        if not rings:
            raise ValueError("a boundary needs at least one ring")
        if sum(len(_as_list(r, "ring")) for r in rings) > MAX_BOUNDARY_VERTICES:
            raise ValueError(f"a boundary has at most {MAX_BOUNDARY_VERTICES} vertices")
        for number, ring in enumerate(rings, start=1):
            _check_ring(number, ring)
        return self


def _as_list(value: Any, what: str) -> list[Any]:
    if not isinstance(value, list):
        raise ValueError(f"each {what} must be a list")
    return value


def _point(value: Any) -> tuple[float, float]:
    if (
        not isinstance(value, list)
        or len(value) < 2
        or not all(isinstance(c, int | float) and math.isfinite(c) for c in value[:2])
    ):
        raise ValueError("a position is [lon, lat] in degrees")
    lon, lat = float(value[0]), float(value[1])
    if not (-180 <= lon <= 180 and -90 <= lat <= 90):
        raise ValueError(f"position {value[:2]} is outside [-180,180]x[-90,90]")
    return lon, lat


def _check_ring(number: int, ring: list[Any]) -> None:
    points = [_point(p) for p in ring]
    if len(points) < 4:
        raise ValueError(f"ring {number} needs at least 4 positions (GeoJSON linear ring)")
    if points[0] != points[-1]:
        raise ValueError(f"ring {number} is not closed: its last position must equal its first")
    segments = list(itertools.pairwise(points))
    for i, a in enumerate(segments):
        for j in range(i + 2, len(segments)):
            if i == 0 and j == len(segments) - 1:
                continue  # the first and last segments meet at the closing point
            if _cross(a, segments[j]):
                raise ValueError(f"ring {number} intersects itself (segments {i + 1}, {j + 1})")


Point = tuple[float, float]


def _orientation(p: Point, q: Point, r: Point) -> int:
    value = (q[1] - p[1]) * (r[0] - q[0]) - (q[0] - p[0]) * (r[1] - q[1])
    return 0 if value == 0 else (1 if value > 0 else -1)


def _on_segment(p: Point, q: Point, r: Point) -> bool:
    return min(p[0], r[0]) <= q[0] <= max(p[0], r[0]) and min(p[1], r[1]) <= q[1] <= max(p[1], r[1])


def _cross(a: tuple[Point, Point], b: tuple[Point, Point]) -> bool:
    (p1, q1), (p2, q2) = a, b
    o1, o2 = _orientation(p1, q1, p2), _orientation(p1, q1, q2)
    o3, o4 = _orientation(p2, q2, p1), _orientation(p2, q2, q1)
    if o1 != o2 and o3 != o4:
        return True
    return (
        (o1 == 0 and _on_segment(p1, p2, q1))
        or (o2 == 0 and _on_segment(p1, q2, q1))
        or (o3 == 0 and _on_segment(p2, p1, q2))
        or (o4 == 0 and _on_segment(p2, q1, q2))
    )


class Sample(Strict):
    """One measured concentration; `item` is a CAS number or a Chinese or English name."""

    item: str = Field(min_length=1, max_length=200)
    value_mg_kg: float = Field(ge=0, le=1e9)
    unit: str = Field(default="mg/kg", max_length=20)
    depth_m: float | None = Field(default=None, ge=0, le=1000)
    background_mg_kg: float | None = Field(default=None, ge=0, le=1e9)
    sample_id: str | None = Field(default=None, max_length=100)


class Target(Strict):
    """A risk-assessment target for one pollutant (Law 60-61; the later evaluation's yardstick)."""

    item: str = Field(min_length=1, max_length=200)
    target_mg_kg: float = Field(ge=0, le=1e9)


class Figure(Strict):
    """An evaluator's figure for one pollutant, compared with its target by R8."""

    item: str = Field(min_length=1, max_length=200)
    value_mg_kg: float = Field(ge=0, le=1e9)


class ParcelFacts(Strict):
    """What the reserve agency registers at intake (DOMAIN.md "Parcel facts")."""

    parcel_id: str = Field(min_length=1, max_length=64, pattern=PARCEL_ID_PATTERN)
    name: str = Text()
    district: str = Field(min_length=1, max_length=50)
    area_m2: float = Field(gt=0, le=1e9)
    current_use: CurrentUse
    industry: Industry | None = None
    enterprise_closed: bool = False
    right_status: RightStatus
    planned_use: str = Field(min_length=1, max_length=20)
    farmland_class: FarmlandClass | None = None
    key_supervised_unit: bool = Field(
        default=False, description="土壤污染重点监管单位 (Law 67): change, recovery or transfer"
    )
    land_user: Party | None = Field(default=None, description="土地使用权人 (Law 45, 59)")
    polluter: Polluter | None = None
    transferee: Transferee | None = None
    location: Location | None = None
    boundary: Boundary | None = None

    @field_validator("district")
    @classmethod
    def _known_district(cls, value: str) -> str:
        return check_district(value)

    @model_validator(mode="after")
    def _land_user_when_it_acts(self) -> ParcelFacts:
        # While the right is held (or still to be recovered) the land user investigates
        # (BJ 17) and isolates (BJ 19): it must be identifiable to be bound to the parcel.
        if self.right_status in ("held", "to_be_recovered") and self.land_user is None:
            raise ValueError(
                f"land_user ({{id, name}}) is required when right_status is "
                f"{self.right_status!r}: the land user acts on this parcel (BJ 17, 19)"
            )
        if self.right_status == "transferred" and self.transferee is None:
            raise ValueError("transferee is required when right_status is 'transferred'")
        return self

    def submitted(self) -> dict[str, Any]:
        """The facts as the agency sent them, without defaults it did not send."""
        return self.model_dump(mode="json", exclude_unset=True)
