"""/openapi.json documents every action body, so a generated client gets typed calls: one
operation per action whose request body is that action's schema, with typed properties.
The app is built in-process (SQLite registry, no Temporal connection)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from api.app import create_app
from landflow.bodies import ACTION_BODIES
from landflow.vocabulary import Action
from tests.conftest import make_settings

REF = "#/components/schemas/"
TYPED = {"type", "$ref", "anyOf", "oneOf", "allOf", "enum", "const"}


@pytest.fixture(scope="module")
def openapi(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return create_app(make_settings(tmp_path_factory.mktemp("openapi"))).openapi()


def refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        if isinstance(node.get("$ref"), str):
            yield node["$ref"]
        for value in node.values():
            yield from refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from refs(value)


def test_every_action_has_a_body() -> None:
    assert set(ACTION_BODIES) == set(Action)


@pytest.mark.parametrize("action", list(ACTION_BODIES), ids=lambda a: a.value)
def test_each_action_is_an_operation_whose_body_is_its_own_schema(
    openapi: dict[str, Any], action: Action
) -> None:
    model = ACTION_BODIES[action]
    operation = openapi["paths"][f"/parcels/{{parcel_id}}/actions/{action.value}"]["post"]
    body = operation["requestBody"]["content"]["application/json"]["schema"]
    assert body == {"$ref": f"{REF}{model.__name__}"}
    schema = openapi["components"]["schemas"][model.__name__]
    declared = model.model_json_schema(ref_template=REF + "{model}")
    assert schema["type"] == "object" and schema.get("additionalProperties") is False
    assert schema["properties"], f"{model.__name__} is a bare object"
    assert schema["properties"].keys() == declared["properties"].keys()
    assert schema.get("required", []) == declared.get("required", [])
    untyped = [name for name, field in schema["properties"].items() if not TYPED & field.keys()]
    assert untyped == [], f"{model.__name__}: untyped properties"


def test_no_action_is_left_to_a_generic_untyped_operation(openapi: dict[str, Any]) -> None:
    actions = {p for p in openapi["paths"] if p.startswith("/parcels/{parcel_id}/actions/")}
    assert actions == {f"/parcels/{{parcel_id}}/actions/{a.value}" for a in Action}
    ids = [openapi["paths"][p]["post"]["operationId"] for p in actions]
    assert len(set(ids)) == len(ids)


def test_every_reference_in_the_document_resolves(openapi: dict[str, Any]) -> None:
    schemas = openapi["components"]["schemas"]
    dangling = {ref for ref in refs(openapi) if ref.removeprefix(REF) not in schemas}
    assert dangling == set()
