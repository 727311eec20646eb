"""The generated CRDs: current, structural, documented, and bounded for CEL cost."""

from __future__ import annotations

import inspect
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from dpio.api import assignment, common, policy, policy_settings
from dpio.api.crd import KINDS, Kind, crd, files, main
from dpio.api.schema import JsonSchema, SchemaError, structural_schema, walk

CRDS = Path(__file__).resolve().parents[3] / "crds"


def schema_of(kind: Kind) -> JsonSchema:
    version = crd(kind)["spec"]["versions"][0]
    return version["schema"]["openAPIV3Schema"]  # type: ignore[no-any-return]


def all_nodes() -> list[tuple[str, str, JsonSchema]]:
    return [(kind.kind, path, node) for kind in KINDS for path, node in walk(schema_of(kind))]


def test_committed_crds_are_what_the_models_generate() -> None:
    committed = {path.name: path.read_text() for path in CRDS.glob("*.yaml")}

    assert committed == files(), "run: python -m dpio.api.crd --out crds/"


def test_generator_entry_point_writes_the_same_files(tmp_path: Path) -> None:
    main(["--out", str(tmp_path)])

    assert {p.name: p.read_text() for p in tmp_path.iterdir()} == files()


@pytest.mark.parametrize("key", ["$ref", "$defs", "anyOf", "allOf", "oneOf", "title"])
def test_schema_has_no_json_schema_only_constructs(key: str) -> None:
    assert [f"{kind}{path}" for kind, path, node in all_nodes() if key in node] == []


def test_every_node_is_typed_and_nothing_is_nullable() -> None:
    untyped = [f"{k}{p}" for k, p, n in all_nodes() if n.get("type") not in _TYPES]
    closed = [f"{k}{p}" for k, p, n in all_nodes() if n.get("additionalProperties") is False]
    null_default = [f"{k}{p}" for k, p, n in all_nodes() if "default" in n and n["default"] is None]

    assert (untyped, closed, null_default) == ([], [], [])


_TYPES = {"object", "array", "string", "integer", "boolean", "number"}


def test_every_field_is_documented_for_kubectl_explain() -> None:
    undocumented = [
        f"{kind}{path}"
        for kind, path, node in all_nodes()
        if path and not path.endswith(("[]", "{}")) and path != ".metadata"
        and not node.get("description")
    ]  # fmt: skip

    assert undocumented == []


def test_spec_lists_and_strings_are_bounded_so_cel_cost_is_bounded() -> None:
    unbounded = [
        f"{kind}{path}"
        for kind, path, node in all_nodes()
        if path.startswith(".spec") and not _bounded(node)
    ]

    assert unbounded == []


def _bounded(node: JsonSchema) -> bool:
    if node["type"] == "array":
        return "maxItems" in node
    if node["type"] == "string":
        return "maxLength" in node or "enum" in node
    return True


def test_list_map_keys_are_required_in_their_items() -> None:
    optional_keys = [
        f"{kind}{path}.{key}"
        for kind, path, node in all_nodes()
        for key in node.get("x-kubernetes-list-map-keys", [])
        if key not in node["items"].get("required", [])
    ]

    assert optional_keys == []


def test_every_rule_of_the_models_is_in_a_crd_once() -> None:
    in_models = sorted(rule.message for rule in _rules())
    in_crds = sorted(
        v["message"] for _, _, node in all_nodes() for v in node.get("x-kubernetes-validations", [])
    )

    # LabelSelector appears once (consumers); every other rule sits on one model or one field.
    assert in_crds == in_models


def test_transition_rules_are_left_to_the_api_server() -> None:
    # A rule on `oldSelf` runs on update only, in the API server: pydantic sees one object, so
    # the check of such a rule accepts anything and the refusal is only the API server's.
    transition = sorted((r for r in _rules() if "oldSelf" in r.cel), key=lambda r: r.message)

    assert [r.message for r in transition] == [
        "is immutable: delete this VMDeviceAssignment and create a new one to use another VM",
        "is immutable: delete this VMDeviceAssignment and create a new one to use another policy",
    ]
    assert all(r.check(None) for r in transition)


def _rules() -> list[common.Rule]:
    classes = [
        cls
        for module in (common, policy, policy_settings, assignment)
        for _, cls in inspect.getmembers(module, inspect.isclass)
        if issubclass(cls, common.ApiModel) and cls.__module__ == module.__name__
    ]
    on_fields = [
        rule
        for cls in classes
        for field in cls.model_fields.values()
        for rule in field.metadata
        if isinstance(rule, common.Rule)
    ]
    return [rule for cls in classes for rule in cls.rules] + on_fields


@pytest.mark.parametrize("kind", KINDS, ids=lambda kind: kind.short_name)
def test_printer_columns_point_at_fields_of_the_schema(kind: Kind) -> None:
    paths = {path for path, _ in walk(schema_of(kind))}
    columns = crd(kind)["spec"]["versions"][0]["additionalPrinterColumns"]

    for column in columns:
        json_path = re.sub(r"\[\?\(.*?\)\]", "[]", column["jsonPath"])
        assert json_path.startswith(".metadata") or json_path in paths, column


@pytest.mark.parametrize(
    ("kind", "columns"),
    [
        (KINDS[0], ["Hosts", "Devices", "Active", "Pending Reboot", "Ready", "Reason", "Age"]),
        (KINDS[1], ["VM", "Host", "Devices", "Power", "Ready", "Reason", "Age"]),
    ],
    ids=["hpp", "vmda"],
)
def test_kubectl_get_shows_the_columns_users_need(kind: Kind, columns: list[str]) -> None:
    shown = [
        column["name"]
        for column in crd(kind)["spec"]["versions"][0]["additionalPrinterColumns"]
        if column.get("priority", 0) == 0
    ]

    assert shown == columns


@pytest.mark.parametrize(
    ("kind", "scope", "short_name"),
    [(KINDS[0], "Cluster", "hpp"), (KINDS[1], "Namespaced", "vmda")],
    ids=["hpp", "vmda"],
)
def test_names_scope_and_subresources(kind: Kind, scope: str, short_name: str) -> None:
    spec: dict[str, Any] = crd(kind)["spec"]

    assert (spec["group"], spec["scope"]) == ("dpio.io", scope)
    assert spec["names"]["shortNames"] == [short_name]
    assert spec["names"]["categories"] == ["dpio"]
    assert spec["versions"][0]["subresources"] == {"status": {}}


def test_yaml_round_trips_to_the_manifests() -> None:
    assert [yaml.safe_load(text) for text in files().values()] == [crd(kind) for kind in KINDS]


def test_unions_other_than_optional_are_refused() -> None:
    class Either(common.ApiModel):
        value: int | str

    with pytest.raises(SchemaError, match=re.escape("other than X | None")):
        structural_schema(Either)
