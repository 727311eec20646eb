"""Building blocks shared by both kinds: the model base, validated string types, metadata.

Every rule a model enforces is written once, as a `Rule`: a CEL expression for the API server
(emitted into the CRD as ``x-kubernetes-validations``) and the same check in Python, with one
message for both, so a bad object reads the same whether kubectl or a unit test rejects it.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Annotated, Any, ClassVar, Self

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    GetCoreSchemaHandler,
    GetJsonSchemaHandler,
    PlainSerializer,
    StringConstraints,
    model_validator,
)
from pydantic.alias_generators import to_camel
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import core_schema

GROUP = "dpio.io"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"


@dataclass(frozen=True)
class Rule:
    """One validation rule, enforced by the API server (``cel``) and by pydantic (``check``).

    A model lists its rules in ``rules``; a rule on a single value goes into the value's type
    instead, as ``Annotated[str, Rule(...)]``, so the API server reports it at the field itself.
    """

    cel: str
    message: str
    check: Callable[[Any], bool]
    field_path: str | None = None  # where the API server reports it, e.g. ".devices"

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        return core_schema.no_info_after_validator_function(self._validate, handler(source))

    def __get_pydantic_json_schema__(
        self, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        json_schema = handler(schema)
        json_schema.setdefault("x-kubernetes-validations", []).append(_cel(self))
        return json_schema

    def _validate(self, value: Any) -> Any:
        if not self.check(value):
            raise ValueError(self.message)
        return value


def _add_rules(schema: dict[str, Any], cls: type[Any]) -> None:
    rules: tuple[Rule, ...] = getattr(cls, "rules", ())
    if rules:
        schema["x-kubernetes-validations"] = [_cel(rule) for rule in rules]


def _cel(rule: Rule) -> dict[str, str]:
    entry = {"rule": rule.cel, "message": rule.message}
    if rule.field_path:
        entry["fieldPath"] = rule.field_path
    return entry


class ApiModel(BaseModel):
    """Base of every API object: camelCase on the wire, snake_case in Python, immutable."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        frozen=True,
        extra="forbid",  # the API server prunes unknown fields; here they are typos
        json_schema_extra=_add_rules,
    )

    rules: ClassVar[tuple[Rule, ...]] = ()

    @model_validator(mode="after")
    def _check_rules(self) -> Self:
        broken = [rule.message for rule in self.rules if not rule.check(self)]
        if broken:
            raise ValueError("; ".join(broken))
        return self


class StatusModel(ApiModel):
    """Base of status parts: tolerant of fields a newer operator version may have written."""

    model_config = ConfigDict(extra="ignore")


# PCI address as vSphere prints it (HostPciDevice.id): domain:bus:slot.function.
PCI_ADDRESS_PATTERN = r"^[0-9a-fA-F]{4}:[0-9a-fA-F]{2}:[0-9a-fA-F]{2}\.[0-7]$"
# A PCI vendor or device id: 16 bits, as 4 hex digits (lspci / vSphere Client spelling).
HEX_ID_PATTERN = r"^[0-9a-fA-F]{4}$"
# Go's time.ParseDuration syntax, restricted to the units that make sense for a drain.
DURATION_PATTERN = r"^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$"
# RFC 1123 label, as Kubernetes uses for namespace and container names.
DNS_LABEL_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
# RFC 1123 subdomain, what most object names must be (k8s.io/apimachinery IsDNS1123Subdomain);
# "[.]", not an escaped dot, so the same text is a valid CEL string literal.
DNS_SUBDOMAIN_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?([.][a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
UUID_PATTERN = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"

PciAddress = Annotated[str, StringConstraints(pattern=PCI_ADDRESS_PATTERN, max_length=12)]
HexId = Annotated[str, StringConstraints(pattern=HEX_ID_PATTERN, max_length=4)]
Duration = Annotated[str, StringConstraints(pattern=DURATION_PATTERN, max_length=64)]
DnsLabel = Annotated[str, StringConstraints(pattern=DNS_LABEL_PATTERN, max_length=63)]
# The name of a Secret or a HostPassthroughPolicy. A CEL rule rather than a `pattern`, so the
# refusal says what a name may contain instead of quoting the regular expression.
ObjectName = Annotated[
    str,
    StringConstraints(min_length=1, max_length=253),
    Rule(
        cel=f"self.matches('{DNS_SUBDOMAIN_PATTERN}')",
        message="must be a Kubernetes object name: lower case letters, digits, '-' and '.', "
        "starting and ending with a letter or digit",
        check=lambda name: re.fullmatch(DNS_SUBDOMAIN_PATTERN, name) is not None,
    ),
]
# A hardware label (HostPciPassthruConfig.hardwareLabel, customLabel of a Dynamic DirectPath
# device): the policy sets it, an assignment asks for it, so both sides share one limit.
HardwareLabel = Annotated[str, StringConstraints(min_length=1, max_length=64)]
# An RE2 pattern (dpio.api.patterns). Its syntax is checked by neither the CRD (CEL has no RE2
# compile) nor this model, so that the model reads whatever the API server admitted: the planner
# compiles it and a pattern RE2 refuses stalls the policy with InvalidSpec, naming the field. A
# refusal here would make the operator skip the object instead: no status saying why, and on
# delete a finalizer nobody removes.
NamePattern = Annotated[str, StringConstraints(min_length=1, max_length=256)]


def _rfc3339(value: datetime) -> str:
    # metav1.Time precision: whole seconds, UTC, "Z" -- what the API server itself writes.
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


Timestamp = Annotated[AwareDatetime, PlainSerializer(_rfc3339, return_type=str, when_used="json")]

_DURATION_PART = re.compile(r"([0-9]+(?:\.[0-9]+)?)(ms|s|m|h)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(value: str) -> timedelta:
    """A Go-style duration (``"1h30m"``, ``"90s"``) as a timedelta; ValueError if malformed."""
    if not re.fullmatch(DURATION_PATTERN, value):
        raise ValueError(f"not a duration like 30m or 1h30m: {value!r}")
    seconds = sum(
        float(number) * _UNIT_SECONDS[unit] for number, unit in _DURATION_PART.findall(value)
    )
    return timedelta(seconds=seconds)


def normalize_pci_address(address: str) -> str:
    """The form to compare addresses in: vSphere reports lower case, users may type upper."""
    return address.lower()


class SecretRef(ApiModel):
    """A Secret in the operator's namespace."""

    name: ObjectName = Field(description="Name of the Secret.")


class LabelSelectorOperator(StrEnum):
    """metav1.LabelSelectorOperator."""

    IN = "In"
    NOT_IN = "NotIn"
    EXISTS = "Exists"
    DOES_NOT_EXIST = "DoesNotExist"


class LabelSelectorRequirement(ApiModel):
    """metav1.LabelSelectorRequirement."""

    rules = (
        Rule(
            cel="self.operator in ['In', 'NotIn'] ? size(self.values) > 0 : size(self.values) == 0",
            message="values must be non-empty for In and NotIn, and empty for Exists and "
            "DoesNotExist",
            check=lambda s: (
                bool(s.values)
                == (s.operator in (LabelSelectorOperator.IN, LabelSelectorOperator.NOT_IN))
            ),
        ),
    )

    key: Annotated[str, StringConstraints(min_length=1, max_length=317)] = Field(
        description="The label key the selector applies to."
    )
    operator: LabelSelectorOperator = Field(
        description="How the key relates to the values: In, NotIn, Exists or DoesNotExist."
    )
    values: list[Annotated[str, StringConstraints(max_length=63)]] = Field(
        default_factory=list,
        max_length=64,
        description="Label values; non-empty for In and NotIn, empty for Exists and DoesNotExist.",
        json_schema_extra={"default": [], "x-kubernetes-list-type": "atomic"},
    )


class LabelSelector(ApiModel):
    """metav1.LabelSelector: the requirements are ANDed; an empty selector matches everything."""

    match_labels: dict[str, Annotated[str, StringConstraints(max_length=63)]] = Field(
        default_factory=dict,
        description="Labels that must all be present with these values.",
    )
    match_expressions: list[LabelSelectorRequirement] = Field(
        default_factory=list,
        max_length=32,
        description="Label requirements that must all hold.",
        json_schema_extra={"x-kubernetes-list-type": "atomic"},
    )


class ObjectMeta(BaseModel):
    """The part of metav1.ObjectMeta the operator reads; other fields are ignored."""

    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, frozen=True, extra="ignore"
    )

    name: str = Field(description="Object name.")
    namespace: str | None = Field(None, description="Namespace; None for cluster-scoped kinds.")
    uid: str | None = Field(None, description="Unique id given by the API server.")
    resource_version: str | None = Field(None, description="Version for optimistic concurrency.")
    generation: int | None = Field(None, description="Sequence number of spec changes.")
    creation_timestamp: AwareDatetime | None = Field(None, description="When it was created.")
    deletion_timestamp: AwareDatetime | None = Field(None, description="Set when deleting.")
    labels: dict[str, str] = Field(default_factory=dict, description="Labels.")
    annotations: dict[str, str] = Field(default_factory=dict, description="Annotations.")
    finalizers: list[str] = Field(default_factory=list, description="Finalizers.")
