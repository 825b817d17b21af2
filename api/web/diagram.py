"""The procedure as an SVG, drawn from `landflow.procedure.FLOWS` and `STAGE_ORDER`.

A stage is a box, one per row, ordered by its longest path from intake over the forward
flows (ties in `STAGE_ORDER`); a flow to the next row is a straight arrow, a longer
forward flow an arc on the right, a loop (`Flow.loop`) a dashed arc on the left. Arcs get
lanes so nested ones do not overlap. On a parcel, the stages it visited, the flows it
took (consecutive stage visits), its loops and its current stage and step are marked
with classes and `data-*` attributes; the layout depends on the table only, so the same
table always gives the same picture, and a new stage or flow needs no drawing code.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from html import escape
from typing import Any

from markupsafe import Markup

from landflow.procedure import FLOWS, STAGE_ORDER, Flow
from landflow.vocabulary import Stage

ROW_H = 56
BOX_W = 176
BOX_H = 40
LANE_W = 20
TOP = 12
LABEL_ROOM = 120  # right of the outermost arc, for its label


@dataclass(frozen=True)
class Arc:
    flow: Flow
    lane: int  # 0: a straight arrow to the next row; 1...: arcs outwards


@dataclass(frozen=True)
class Layout:
    rows: dict[Stage, int]
    arcs: tuple[Arc, ...]
    left_lanes: int
    right_lanes: int

    @property
    def box_x(self) -> int:
        return (LABEL_ROOM if self.left_lanes else 16) + self.left_lanes * LANE_W

    @property
    def width(self) -> int:
        return self.box_x + BOX_W + self.right_lanes * LANE_W + LABEL_ROOM

    @property
    def height(self) -> int:
        return TOP * 2 + (len(self.rows) - 1) * ROW_H + BOX_H

    def top(self, stage: Stage) -> int:
        return TOP + self.rows[stage] * ROW_H


def _ranks(stages: Sequence[Stage], flows: Sequence[Flow]) -> dict[Stage, int]:
    """Longest path from the stages nothing flows into, over forward flows; the table's
    order if the forward flows are not acyclic (a table error the tests would catch)."""
    order = {s: i for i, s in enumerate(stages)}
    forward = [f for f in flows if not f.loop and f.source in order and f.target in order]
    rank = dict.fromkeys(stages, 0)
    for _ in range(len(stages)):
        changed = False
        for f in forward:
            if rank[f.target] < rank[f.source] + 1:
                rank[f.target] = rank[f.source] + 1
                changed = True
        if not changed:
            return rank
    return order


def _lanes(spans: list[tuple[int, int, Flow]]) -> dict[Flow, int]:
    """Shortest spans nearest the boxes; an arc takes the first lane free over its span."""
    taken: list[list[tuple[int, int]]] = []
    lanes: dict[Flow, int] = {}
    for low, high, flow in sorted(spans, key=lambda s: (s[1] - s[0], s[0], s[1])):
        for number, used in enumerate(taken):
            if all(high <= a or low >= b for a, b in used):
                used.append((low, high))
                lanes[flow] = number + 1
                break
        else:
            taken.append([(low, high)])
            lanes[flow] = len(taken)
    return lanes


def layout(stages: Sequence[Stage] = STAGE_ORDER, flows: Sequence[Flow] = FLOWS) -> Layout:
    rank = _ranks(stages, flows)
    order = {s: i for i, s in enumerate(stages)}
    rows = {s: row for row, s in enumerate(sorted(stages, key=lambda s: (rank[s], order[s])))}
    right: list[tuple[int, int, Flow]] = []
    left: list[tuple[int, int, Flow]] = []
    arcs: list[Arc] = []
    for f in flows:
        if f.source not in rows or f.target not in rows:
            continue
        a, b = rows[f.source], rows[f.target]
        if not f.loop and b == a + 1:
            arcs.append(Arc(f, 0))
        else:
            (left if f.loop or b < a else right).append((min(a, b), max(a, b), f))
    right_lanes, left_lanes = _lanes(right), _lanes(left)
    arcs += [Arc(f, right_lanes[f]) for *_, f in right]
    arcs += [Arc(f, -left_lanes[f]) for *_, f in left]
    return Layout(
        rows=rows,
        arcs=tuple(arcs),
        left_lanes=max(left_lanes.values(), default=0),
        right_lanes=max(right_lanes.values(), default=0),
    )


@dataclass(frozen=True)
class Progress:
    """What a parcel did in the procedure: its stage visits, in order, and where it is."""

    visits: tuple[Stage, ...] = ()
    current: Stage | None = None
    step_title: str | None = None  # the open step, written under the current stage

    def taken(self) -> set[tuple[Stage, Stage]]:
        return set(itertools.pairwise(self.visits))


def _attr(value: object) -> str:
    return escape(str(value), quote=True)


def _arc_path(lay: Layout, arc: Arc) -> tuple[str, float, float]:
    """The path of a flow and where its label goes (left of a loop, right of the rest)."""
    f = arc.flow
    source_top, target_top = lay.top(f.source), lay.top(f.target)
    centre = lay.box_x + BOX_W / 2
    if arc.lane == 0:
        start, end = source_top + BOX_H, target_top
        return f"M{centre:.0f},{start} L{centre:.0f},{end - 2}", centre + 6, (start + end) / 2 + 4
    down = target_top > source_top
    nudge = min(abs(arc.lane) * 3, BOX_H / 2 - 6)
    y0 = source_top + BOX_H / 2 + (nudge if down else -nudge)
    y1 = target_top + BOX_H / 2 + (-nudge if down else nudge)
    if arc.lane > 0:
        x, bulge = lay.box_x + BOX_W, arc.lane * LANE_W * 4 / 3
        label_x = x + 0.75 * bulge + 4
    else:
        x, bulge = lay.box_x, arc.lane * LANE_W * 4 / 3
        label_x = x + 0.75 * bulge - 4
    path = f"M{x:.0f},{y0:.0f} C{x + bulge:.0f},{y0:.0f} {x + bulge:.0f},{y1:.0f} {x:.0f},{y1:.0f}"
    return path, label_x, (y0 + y1) / 2 + 4


def render(
    progress: Progress | None = None,
    *,
    stage_label: object = None,
    flow_label: object = None,
    title: str = "",
) -> Markup:
    """The inline `<svg>`; `stage_label(stage)` and `flow_label(flow)` give the words
    (default: the ids and the table's Chinese labels)."""
    progress = progress or Progress()
    name = stage_label if callable(stage_label) else (lambda s: s.value)
    say = flow_label if callable(flow_label) else (lambda f: f.label)
    lay = layout()
    visited = set(progress.visits)
    counts = {s: progress.visits.count(s) for s in visited}
    taken = progress.taken()
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="procedure" role="img" '
        f'viewBox="0 0 {lay.width} {lay.height}" width="{lay.width}" height="{lay.height}" '
        f'aria-labelledby="procedure-title">',
        f'<title id="procedure-title">{escape(title or "procedure")}</title>',
        "<defs>"
        '<marker id="arrow" viewBox="0 0 8 8" refX="7" refY="4" markerWidth="7" '
        'markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L8,4 L0,8 z"/></marker>'
        '<marker id="arrow-taken" viewBox="0 0 8 8" refX="7" refY="4" markerWidth="7" '
        'markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L8,4 L0,8 z"/></marker>'
        "</defs>",
    ]
    for arc in sorted(lay.arcs, key=lambda a: (a.flow.source, a.flow.target)):
        f = arc.flow
        is_taken = (f.source, f.target) in taken
        classes = " ".join(
            c for c, on in (("flow", True), ("loop", f.loop), ("taken", is_taken)) if on
        )
        path, lx, ly = _arc_path(lay, arc)
        label = str(say(f))
        marker = "arrow-taken" if is_taken else "arrow"
        anchor = ' text-anchor="end"' if arc.lane < 0 else ""
        parts.append(
            f'<g class="{classes}" data-from="{_attr(f.source)}" data-to="{_attr(f.target)}" '
            f'data-loop="{str(f.loop).lower()}" data-taken="{str(is_taken).lower()}">'
            f"<title>{escape(label)} ({escape(f.clause)})</title>"
            f'<path d="{path}" marker-end="url(#{marker})"/>'
            f'<text x="{lx:.0f}" y="{ly:.0f}"{anchor}>{escape(label)}</text></g>'
        )
    for stage, _row in sorted(lay.rows.items(), key=lambda item: item[1]):
        is_current = stage == progress.current
        classes = " ".join(
            c
            for c, on in (("stage", True), ("visited", stage in visited), ("current", is_current))
            if on
        )
        top = lay.top(stage)
        label = escape(str(name(stage)))
        times = counts.get(stage, 0)
        badge = (
            f'<text class="visits" x="{lay.box_x + BOX_W - 6}" y="{top + 14}">×{times}</text>'
            if times > 1
            else ""
        )
        detail = (
            f'<text class="step" x="{lay.box_x + BOX_W / 2:.0f}" y="{top + 33}">'
            f"{escape(progress.step_title)}</text>"
            if is_current and progress.step_title
            else ""
        )
        text_y = top + (19 if detail else 25)
        parts.append(
            f'<g class="{classes}" data-stage="{_attr(stage)}" '
            f'data-current="{str(is_current).lower()}" data-visits="{times}">'
            f'<rect x="{lay.box_x}" y="{top}" width="{BOX_W}" height="{BOX_H}" rx="6"/>'
            f'<text class="name" x="{lay.box_x + BOX_W / 2:.0f}" y="{text_y}">{label}</text>'
            f"{badge}{detail}</g>"
        )
    parts.append("</svg>")
    return Markup("".join(parts))


# --- a parcel's outline (the public register; tiles under it where configured) -------

TILE = 256
OUTLINE_W, OUTLINE_H = 360, 260
MAX_ZOOM = 18


def _mercator(lon: float, lat: float, zoom: int) -> tuple[float, float]:
    """Web-Mercator pixels at `zoom` (what slippy-map tiles are cut in)."""
    scale = TILE * 2**zoom
    sin = min(max(math.sin(math.radians(lat)), -0.9999), 0.9999)
    x = (lon + 180) / 360 * scale
    y = (0.5 - math.log((1 + sin) / (1 - sin)) / (4 * math.pi)) * scale
    return x, y


def _rings(boundary: Mapping[str, Any] | None) -> list[list[tuple[float, float]]]:
    if not boundary:
        return []
    coordinates = boundary.get("coordinates") or []
    polygons = [coordinates] if boundary.get("type") == "Polygon" else coordinates
    rings = []
    for polygon in polygons:
        for ring in polygon or []:
            points = [(float(p[0]), float(p[1])) for p in ring if len(p) >= 2]
            if len(points) >= 3:
                rings.append(points)
    return rings


def _tile(template: str, z: int, x: int, y: int) -> str:
    return template.replace("{z}", str(z)).replace("{x}", str(x)).replace("{y}", str(y))


def outline(
    boundary: Mapping[str, Any] | None,
    location: Mapping[str, Any] | None,
    *,
    tile_url: str = "",
    title: str = "",
) -> Markup | None:
    """The boundary (or the centre point) as an SVG in Web-Mercator pixels, so tiles of
    `tile_url` (`https://tiles.example/{z}/{x}/{y}.png`) line up under it; None if the
    parcel has neither."""
    rings = _rings(boundary)
    centre = (float(location["lon"]), float(location["lat"])) if location else None
    lonlats = [p for ring in rings for p in ring] or ([centre] if centre else [])
    if not lonlats:
        return None
    zoom = 16 if not rings else MAX_ZOOM
    while rings and zoom > 1:
        xs, ys = zip(*(_mercator(lon, lat, zoom) for lon, lat in lonlats), strict=True)
        if max(xs) - min(xs) <= OUTLINE_W * 0.8 and max(ys) - min(ys) <= OUTLINE_H * 0.8:
            break
        zoom -= 1
    xs, ys = zip(*(_mercator(lon, lat, zoom) for lon, lat in lonlats), strict=True)
    x0 = (min(xs) + max(xs)) / 2 - OUTLINE_W / 2
    y0 = (min(ys) + max(ys)) / 2 - OUTLINE_H / 2
    frame = f'x="{x0:.1f}" y="{y0:.1f}" width="{OUTLINE_W}" height="{OUTLINE_H}"'
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="outline-map" role="img" '
        f'viewBox="{x0:.1f} {y0:.1f} {OUTLINE_W} {OUTLINE_H}" width="{OUTLINE_W}" '
        f'height="{OUTLINE_H}" aria-labelledby="outline-title" data-zoom="{zoom}">',
        f'<title id="outline-title">{escape(title or "outline")}</title>',
        f'<rect class="ground" {frame}/>',
    ]
    if tile_url:
        for tx in range(int(x0 // TILE), int((x0 + OUTLINE_W) // TILE) + 1):
            for ty in range(int(y0 // TILE), int((y0 + OUTLINE_H) // TILE) + 1):
                if 0 <= tx < 2**zoom and 0 <= ty < 2**zoom:
                    parts.append(
                        f'<image class="tile" href="{_attr(_tile(tile_url, zoom, tx, ty))}" '
                        f'x="{tx * TILE}" y="{ty * TILE}" width="{TILE}" height="{TILE}"/>'
                    )
    if rings:
        path = " ".join(
            "M"
            + " L".join(f"{x:.1f},{y:.1f}" for x, y in (_mercator(*p, zoom) for p in ring))
            + " Z"
            for ring in rings
        )
        parts.append(f'<path class="boundary" fill-rule="evenodd" d="{path}"/>')
    if centre:
        cx, cy = _mercator(*centre, zoom)
        parts.append(f'<circle class="centre" cx="{cx:.1f}" cy="{cy:.1f}" r="5"/>')
    parts.append("</svg>")
    return Markup("".join(parts))
