"""The procedure diagram and the parcel outline, as SVG, without a browser."""

from __future__ import annotations

import itertools
import xml.etree.ElementTree as ET

import pytest

from api.web import diagram
from landflow.procedure import FLOWS, STAGE_ORDER, Flow
from landflow.vocabulary import Stage

SVG = "{http://www.w3.org/2000/svg}"
RETURNED_ONCE = (
    Stage.intake,
    Stage.closure_screening,
    Stage.investigation,
    Stage.filing,
    Stage.investigation,
    Stage.filing,
    Stage.risk_assessment,
)


def parse(markup: str) -> ET.Element:
    return ET.fromstring(str(markup))


def stages_of(svg: ET.Element) -> dict[str, ET.Element]:
    return {g.get("data-stage", ""): g for g in svg.iter(f"{SVG}g") if g.get("data-stage")}


def flows_of(svg: ET.Element) -> dict[tuple[str, str], ET.Element]:
    return {
        (g.get("data-from", ""), g.get("data-to", "")): g
        for g in svg.iter(f"{SVG}g")
        if g.get("data-from")
    }


def test_one_node_per_stage_and_one_edge_per_flow_with_the_loops_marked() -> None:
    svg = parse(diagram.render())
    assert list(stages_of(svg)) == [s.value for s in sorted(STAGE_ORDER, key=_row)]
    edges = flows_of(svg)
    assert set(edges) == {(f.source.value, f.target.value) for f in FLOWS}
    for flow in FLOWS:
        edge = edges[(flow.source.value, flow.target.value)]
        assert edge.get("data-loop") == str(flow.loop).lower()
        assert ("loop" in edge.get("class", "").split()) == flow.loop
        assert edge.find(f"{SVG}path") is not None and edge.find(f"{SVG}title") is not None
    assert all(g.get("data-current") == "false" for g in stages_of(svg).values())


def _row(stage: Stage) -> int:
    return diagram.layout().rows[stage]


def test_the_layout_follows_the_table_and_is_deterministic() -> None:
    lay = diagram.layout()
    assert sorted(lay.rows.values()) == list(range(len(STAGE_ORDER)))
    for flow in FLOWS:
        if not flow.loop:
            assert lay.rows[flow.target] > lay.rows[flow.source], flow
        else:
            assert lay.rows[flow.target] < lay.rows[flow.source], flow
    # arcs sharing a lane never overlap over the rows they span
    for side in (1, -1):
        lanes: dict[int, list[tuple[int, int]]] = {}
        for arc in lay.arcs:
            if arc.lane * side > 0:
                a, b = lay.rows[arc.flow.source], lay.rows[arc.flow.target]
                lanes.setdefault(arc.lane, []).append((min(a, b), max(a, b)))
        for spans in lanes.values():
            spans.sort()
            assert all(x[1] <= y[0] for x, y in itertools.pairwise(spans)), spans
    progress = diagram.Progress(visits=RETURNED_ONCE, current=Stage.risk_assessment)
    assert diagram.render(progress) == diagram.render(progress)


def test_a_parcel_shows_its_visits_its_loops_and_where_it_stands() -> None:
    progress = diagram.Progress(
        visits=RETURNED_ONCE, current=Stage.risk_assessment, step_title="提交风险评估报告"
    )
    svg = parse(diagram.render(progress))
    nodes, edges = stages_of(svg), flows_of(svg)
    current = [s for s, g in nodes.items() if g.get("data-current") == "true"]
    assert current == ["risk_assessment"]
    assert "提交风险评估报告" in "".join(nodes["risk_assessment"].itertext())
    assert nodes["filing"].get("data-visits") == "2"
    visited = {s for s, g in nodes.items() if "visited" in g.get("class", "").split()}
    assert visited == {s.value for s in RETURNED_ONCE}
    taken = {k for k, g in edges.items() if g.get("data-taken") == "true"}
    assert taken == {
        ("intake", "closure_screening"),
        ("closure_screening", "investigation"),
        ("investigation", "filing"),
        ("filing", "investigation"),  # the loop taken
        ("filing", "risk_assessment"),
    }
    assert edges[("evaluation", "remediation")].get("data-taken") == "false"


def test_a_new_stage_and_flow_need_no_drawing_code() -> None:
    stages = (*STAGE_ORDER[:-1], "appeal", STAGE_ORDER[-1])
    flows = (*FLOWS, Flow(Stage.release, "appeal", "复议", "Law 97"))  # type: ignore[arg-type]
    lay = diagram.layout(stages, flows)  # type: ignore[arg-type]
    assert lay.rows["appeal"] > lay.rows[Stage.release]  # type: ignore[index]
    assert any(a.flow.target == "appeal" for a in lay.arcs)


def test_words_are_escaped_and_chosen_by_the_caller() -> None:
    svg = diagram.render(
        diagram.Progress(current=Stage.intake, step_title="<script>"),
        stage_label=lambda s: f"<{s.value}>",
        title="a & b",
    )
    assert "<script>" not in svg and "&lt;script&gt;" in svg
    parsed = parse(svg)
    assert parsed.find(f"{SVG}title").text == "a & b"  # type: ignore[union-attr]
    names = [t.text for t in parsed.iter(f"{SVG}text") if t.get("class") == "name"]
    assert "<filing>" in names


BOUNDARY = {
    "type": "MultiPolygon",
    "coordinates": [
        [[[116.50, 39.88], [116.52, 39.88], [116.52, 39.89], [116.50, 39.88]]],
        [[[116.53, 39.88], [116.54, 39.88], [116.54, 39.885], [116.53, 39.88]]],
    ],
}


def test_an_outline_in_tile_pixels_with_tiles_under_it() -> None:
    template = "https://tiles.example/{z}/{x}/{y}.png"
    svg = parse(diagram.outline(BOUNDARY, {"lat": 39.885, "lon": 116.52}, tile_url=template))
    zoom = int(svg.get("data-zoom", "0"))
    assert 10 <= zoom <= diagram.MAX_ZOOM
    (path,) = [p for p in svg.iter(f"{SVG}path") if p.get("class") == "boundary"]
    assert path.get("d", "").count("M") == 2  # both polygons
    tiles = [i for i in svg.iter(f"{SVG}image")]
    assert tiles and all(
        i.get("href", "").startswith(f"https://tiles.example/{zoom}/") for i in tiles
    )
    x, y = diagram._mercator(116.52, 39.885, zoom)
    (centre,) = svg.iter(f"{SVG}circle")
    assert (float(centre.get("cx", 0)), float(centre.get("cy", 0))) == pytest.approx(
        (x, y), abs=0.1
    )
    # each tile sits where the tile grid puts it, so the outline lies on the right tile
    for tile in tiles:
        _, tx, ty = tile.get("href", "").rsplit(".", 1)[0].rsplit("/", 3)[-3:]
        assert float(tile.get("x", -1)) == int(tx) * diagram.TILE
        assert float(tile.get("y", -1)) == int(ty) * diagram.TILE


def test_a_point_only_outline_and_none_without_a_place() -> None:
    svg = parse(diagram.outline(None, {"lat": 39.9, "lon": 116.4}))
    assert svg.find(f"{SVG}image") is None and svg.find(f"{SVG}circle") is not None
    assert diagram.outline(None, None) is None
