"""Pydantic JSON schema -> Kubernetes structural OpenAPI v3 schema.

A CRD schema must be structural (apiextensions.k8s.io/v1): every node has a ``type``, no
``$ref``, no ``anyOf`` that changes types, no ``additionalProperties: false``. Pydantic's schema
is close; this module closes the gap without knowing anything about our kinds.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

JsonSchema = dict[str, Any]

# Keys with no meaning (title) or not allowed (``additionalProperties: false``) in a CRD.
_DROPPED = {"title", "$defs"}
_NULL = {"type": "null"}
# Keys in reading order, so the generated YAML reads like a hand-written CRD.
_KEY_ORDER = (
    "type",
    "description",
    "format",
    "enum",
    "default",
    "pattern",
    "minLength",
    "maxLength",
    "minimum",
    "maximum",
    "minItems",
    "maxItems",
    "required",
    "properties",
    "items",
    "additionalProperties",
    "x-kubernetes-list-type",
    "x-kubernetes-list-map-keys",
    "x-kubernetes-validations",
)


class SchemaError(ValueError):
    """The model uses a construct a structural schema can't express."""


def structural_schema(model: type[BaseModel]) -> JsonSchema:
    """The model's validation schema with every $ref inlined and nullable unions flattened."""
    schema = model.model_json_schema(by_alias=True, mode="validation")
    return _convert(schema, schema.get("$defs", {}), path=model.__name__)


def _convert(node: JsonSchema, defs: JsonSchema, path: str) -> JsonSchema:
    node = _inline_ref(node, defs)
    node = _flatten_nullable(node, defs, path)
    out: JsonSchema = {}
    for key, value in node.items():
        if key in _DROPPED or (key == "additionalProperties" and value is False):
            continue
        if key == "default" and value is None:
            continue  # "unset" in Python is "absent" on the wire, not null
        out[key] = _convert_child(key, value, defs, path)
    if "type" not in out:
        raise SchemaError(f"{path}: no type in {sorted(out)}")
    return dict(sorted(out.items(), key=_rank))


def _rank(item: tuple[str, Any]) -> tuple[int, str]:
    key = item[0]
    return (_KEY_ORDER.index(key) if key in _KEY_ORDER else len(_KEY_ORDER), key)


def _convert_child(key: str, value: Any, defs: JsonSchema, path: str) -> Any:
    if key == "properties":
        return {name: _convert(sub, defs, f"{path}.{name}") for name, sub in value.items()}
    if key == "items" or (key == "additionalProperties" and isinstance(value, dict)):
        return _convert(value, defs, f"{path}[]")
    return value


def _inline_ref(node: JsonSchema, defs: JsonSchema) -> JsonSchema:
    ref = node.get("$ref")
    if ref is None:
        return node
    target = defs[ref.removeprefix("#/$defs/")]
    # The field's own keys (its description, default) win over the referenced type's.
    return {**_inline_ref(target, defs), **{k: v for k, v in node.items() if k != "$ref"}}


def _flatten_nullable(node: JsonSchema, defs: JsonSchema, path: str) -> JsonSchema:
    branches = node.get("anyOf")
    if branches is None:
        return node
    kept = [branch for branch in branches if branch != _NULL]
    if len(kept) != 1:
        raise SchemaError(f"{path}: unions other than X | None are not structural")
    rest = {k: v for k, v in node.items() if k != "anyOf"}
    return {**_inline_ref(kept[0], defs), **rest}


def walk(node: JsonSchema, path: str = "") -> list[tuple[str, JsonSchema]]:
    """Every schema node with its path (``.spec.devices[]``), depth first; for checks and tests."""
    found = [(path, node)]
    for name, sub in node.get("properties", {}).items():
        found += walk(sub, f"{path}.{name}")
    if isinstance(node.get("items"), dict):
        found += walk(node["items"], f"{path}[]")
    if isinstance(node.get("additionalProperties"), dict):
        found += walk(node["additionalProperties"], f"{path}{{}}")
    return found
