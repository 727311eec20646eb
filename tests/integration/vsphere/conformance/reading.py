"""Read every property of every managed object with pyVmomi, twice (PropertyCollector and
attribute access), and validate the raw SOAP answers against pyVmomi's type model.

Objects are found as a client would: the ServiceContent's references, every ManagedEntity of a
ContainerView on the root folder, then every managed object reference in the values read, until
no new object turns up. Properties are those of the object's type (``_GetPropertyList``) that
exist in the negotiated API version.
"""

from __future__ import annotations

import io
import xml.etree.ElementTree as ET
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from pyVmomi import VmomiSupport, vim, vmodl
from pyVmomi.SoapAdapter import SoapResponseDeserializer
from pyVmomi.VmomiSupport import F_OPTIONAL, XMLNS_XSD, XMLNS_XSI, IsChildVersion

_XSI_TYPE = f"{{{XMLNS_XSI}}}type"
_PC = vmodl.query.PropertyCollector

#: Properties not read, by "Type.property", each with the reason (README "Fidelity").
EXCLUDED: dict[str, str] = {
    "ClusterComputeResource.summaryEx": "vSphere 8.0.3 property missing from govmomi's type model",
    "ComputeResource.configManagerEnabled": "vSphere 7.0.3 property missing from govmomi's model",
    "ClusterComputeResource.configManagerEnabled": "as ComputeResource.configManagerEnabled",
}

_CATALOG = "upstream's static catalog leaves it empty; nothing in the sandbox reads it"
#: Required fields ("DataType.field") the simulator leaves unset, each with the reason.
EXCLUDED_FIELDS: dict[str, str] = {
    **{
        f"AlarmDescription.{name}": _CATALOG
        for name in (
            "expr",
            "stateOperator",
            "metricOperator",
            "hostSystemConnectionState",
            "virtualMachinePowerState",
            "datastoreConnectionState",
            "hostSystemPowerState",
            "virtualMachineGuestHeartbeatStatus",
            "entityStatus",
            "action",
        )
    },
    "PerformanceDescription.counterType": _CATALOG,
    "PerformanceDescription.statsType": _CATALOG,
    **{
        f"ScheduledTaskDescription.{name}": _CATALOG
        for name in ("action", "schedulerInfo", "state", "dayOfWeek", "weekOfMonth")
    },
    "LicenseManagerEvaluationInfo.properties": "upstream's evaluation license has no properties",
    "FaultTolerancePrimaryConfigInfo.secondaries": (
        "the inventory's FT primary has no secondary VM object to name"
    ),
}


@dataclass
class Report:
    """What was read and what was wrong, for the session summary."""

    objects: int = 0
    pc_reads: int = 0
    attribute_reads: int = 0
    types: set[str] = field(default_factory=set)
    govc_commands: int = 0
    failures: list[str] = field(default_factory=list)

    @property
    def properties_read(self) -> int:
        return self.pc_reads + self.attribute_reads

    def summary(self) -> str:
        return (
            f"conformance: {self.properties_read} properties read ({self.pc_reads} through the "
            f"PropertyCollector, {self.attribute_reads} by attribute) on {self.objects} objects of "
            f"{len(self.types)} types, {self.govc_commands} govc commands run, "
            f"{len(self.failures)} failures"
        )


def properties(stub: Any, kind: type) -> list[Any]:
    """The property infos of ``kind`` the negotiated version has, less the named exclusions."""
    return [
        p
        for p in kind._GetPropertyList()
        if IsChildVersion(stub.version, p.version) and f"{kind._wsdlName}.{p.name}" not in EXCLUDED
    ]


def raw_invoke(stub: Any, mo: Any, method: str, args: list[Any]) -> tuple[bytes, Any]:
    """Call ``method`` through pyVmomi's serializer and return (raw SOAP answer, parsed result)."""
    info = type(mo)._GetMethodInfo(method)
    request = stub.SerializeRequest(mo, info, args)
    conn = stub.GetConnection()
    headers = {
        "Cookie": stub.cookie,
        "SOAPAction": stub.versionId,
        "Content-Type": "text/xml; charset=UTF-8",
    }
    conn.request("POST", stub.path, request, headers)
    resp = conn.getresponse()
    raw = resp.read()
    stub.ReturnConnection(conn)
    result = SoapResponseDeserializer(stub).Deserialize(io.BytesIO(raw), info.result)
    if resp.status != 200:
        raise result
    return raw, result


def validate(raw: bytes, declared: type, stub: Any) -> list[str]:
    """Problems of a SOAP answer's ``returnval`` elements measured against pyVmomi's model:
    unknown types or fields, required fields missing, enum values outside the enum."""
    body = ET.fromstring(raw).find("{http://schemas.xmlsoap.org/soap/envelope/}Body")
    assert body is not None, "no SOAP Body"
    problems: list[str] = []
    for response in body:
        for elem in response:
            _check(elem, declared, "returnval", stub, problems)
    return problems


def _resolve(xsi_type: str) -> type | None:
    prefix, _, name = xsi_type.rpartition(":")
    if name == "ManagedObjectReference":
        return VmomiSupport.ManagedObject
    if name == "ArrayOfManagedObjectReference":
        return VmomiSupport.ManagedObject.Array  # type: ignore[no-any-return]
    ns = XMLNS_XSD if prefix == "xsd" else "urn:vim25"
    try:
        return VmomiSupport.GetWsdlType(ns, name)  # type: ignore[no-any-return]
    except KeyError:
        return None


def _check(elem: ET.Element, declared: type, path: str, stub: Any, problems: list[str]) -> None:
    kind: type | None = declared
    xsi_type = elem.get(_XSI_TYPE)
    if xsi_type is not None:
        kind = _resolve(xsi_type)
        if kind is None:
            problems.append(f"{path}: unknown type {xsi_type}")
            return
    if issubclass(kind, VmomiSupport.Array):
        for i, child in enumerate(elem):
            _check(child, kind.Item, f"{path}[{i}]", stub, problems)
    elif issubclass(kind, VmomiSupport.Enum):
        if elem.text not in kind.values:
            problems.append(f"{path}: {elem.text!r} is not a {kind._wsdlName} value")
    elif issubclass(kind, VmomiSupport.ManagedObject):
        if _resolve(elem.get("type", "")) is None:
            problems.append(f"{path}: reference to unknown type {elem.get('type')}")
    elif issubclass(kind, vmodl.MethodFault) and elem.find("{urn:vim25}fault") is not None:
        # LocalizedMethodFault (the wire's wrapper, which pyVmomi folds into MethodFault)
        fault = elem.find("{urn:vim25}fault")
        assert fault is not None
        _check(fault, kind, f"{path}.fault", stub, problems)
    elif issubclass(kind, VmomiSupport.DataObject):
        children: dict[str, list[ET.Element]] = defaultdict(list)
        for child in elem:
            children[child.tag.rpartition("}")[2]].append(child)
        for prop in kind._GetPropertyList():
            found = children.pop(prop.name, [])
            required = not prop.flags & F_OPTIONAL and IsChildVersion(stub.version, prop.version)
            if not found and required and f"{kind._wsdlName}.{prop.name}" not in EXCLUDED_FIELDS:
                problems.append(f"{path}: {kind._wsdlName}.{prop.name} (required) missing")
            item = prop.type.Item if issubclass(prop.type, VmomiSupport.Array) else prop.type
            for i, child in enumerate(found):
                sub = f"{path}.{prop.name}" + (f"[{i}]" if len(found) > 1 else "")
                _check(child, item, sub, stub, problems)
        for name in children:
            problems.append(f"{path}: {kind._wsdlName} has no field {name}")


def refs_in(value: Any) -> Iterator[Any]:
    """Every managed object reference inside a parsed value."""
    if isinstance(value, VmomiSupport.ManagedObject):
        yield value
    elif isinstance(value, list):
        for item in value:
            yield from refs_in(item)
    elif isinstance(value, VmomiSupport.DataObject):
        for prop in value._GetPropertyList():
            yield from refs_in(getattr(value, prop.name, None))


def _key(mo: Any) -> tuple[str, str]:
    return (mo._wsdlName, mo._moId)


def read_everything(si: Any, report: Report) -> dict[tuple[str, str], dict[str, Any]]:
    """Read every reachable object whole, both ways; return {(type, moid): {property: value}}."""
    content = si.RetrieveContent()
    view = content.viewManager.CreateContainerView(content.rootFolder, [vim.ManagedEntity], True)
    try:
        pending: dict[tuple[str, str], Any] = {}
        for mo in [*refs_in(content), *view.view, view]:
            pending.setdefault(_key(mo), mo)
        seen: dict[tuple[str, str], dict[str, Any]] = {}
        mos: dict[tuple[str, str], Any] = {}
        while pending:
            by_type: dict[type, list[Any]] = defaultdict(list)
            for key, mo in pending.items():
                by_type[type(mo)].append(mo)
                seen[key], mos[key] = {}, mo
            pending = {}
            for kind, objs in sorted(by_type.items(), key=lambda kv: kv[0]._wsdlName):
                report.types.add(kind._wsdlName)
                for mo, values in _collect(si, content, kind, objs, report):
                    seen[_key(mo)] = values
                    for ref in refs_in(list(values.values())):
                        if _key(ref) not in seen:
                            pending.setdefault(_key(ref), ref)
        for key in sorted(mos):
            _read_attributes(mos[key], seen[key], report)
        report.objects += len(seen)
        return seen
    finally:
        view.Destroy()


def _collect(
    si: Any, content: Any, kind: type, objs: list[Any], report: Report, *, by_view: bool = True
) -> list[tuple[Any, dict[str, Any]]]:
    """One RetrievePropertiesEx per type, every property: through a ContainerView of the type for
    managed entities, by reference for the rest."""
    stub = si._stub
    props = properties(stub, kind)
    if not props:
        return []
    entity = by_view and issubclass(kind, vim.ManagedEntity)
    view = None
    if entity:
        view = content.viewManager.CreateContainerView(content.rootFolder, [kind], True)
        object_set = [
            _PC.ObjectSpec(
                obj=view,
                skip=True,
                selectSet=[
                    _PC.TraversalSpec(
                        name="v", path="view", skip=False, type=vim.view.ContainerView
                    )
                ],
            )
        ]
    else:
        object_set = [_PC.ObjectSpec(obj=mo, skip=False) for mo in objs]
    spec = _PC.FilterSpec(
        objectSet=object_set,
        propSet=[_PC.PropertySpec(type=kind, all=False, pathSet=[p.name for p in props])],
    )
    pc = content.propertyCollector
    results: list[tuple[Any, dict[str, Any]]] = []
    try:
        raw, result = raw_invoke(stub, pc, "RetrievePropertiesEx", [[spec], _PC.RetrieveOptions()])
        while True:
            for problem in validate(raw, _PC.RetrieveResult, stub):
                report.failures.append(f"{kind._wsdlName} RetrievePropertiesEx: {problem}")
            for obj in result.objects if result else []:
                if type(obj.obj) is not kind:  # a view of a type holds its subtypes too
                    continue
                for missing in obj.missingSet:
                    report.failures.append(
                        f"{kind._wsdlName} {obj.obj._moId}.{missing.path}: {missing.fault}"
                    )
                values = {p.name: p.val for p in obj.propSet}
                report.pc_reads += len(props)
                results.append((obj.obj, values))
            if result is None or not result.token:
                break
            raw, result = raw_invoke(stub, pc, "ContinueRetrievePropertiesEx", [result.token])
    except vmodl.MethodFault as fault:
        report.failures.append(f"{kind._wsdlName} RetrievePropertiesEx: {fault.msg or fault}")
    except Exception as exc:  # a parse error is a finding, not a crash of the suite
        report.failures.append(
            f"{kind._wsdlName} RetrievePropertiesEx: {type(exc).__name__}: {exc}"
        )
    finally:
        if view is not None:
            view.Destroy()
    got = {_key(mo) for mo, _ in results}
    rest = [mo for mo in objs if _key(mo) not in got]
    if entity and rest:  # the root folder: a view holds what is under its container only
        return results + _collect(si, content, kind, rest, report, by_view=False)
    for mo in rest:
        report.failures.append(f"{kind._wsdlName} {mo._moId}: not returned by the collector")
    return results


#: Properties that change between two reads by themselves: a session's lastActiveTime moves
#: with every call.
VOLATILE = {"SessionManager.sessionList", "SessionManager.currentSession"}


def _read_attributes(mo: Any, values: dict[str, Any], report: Report) -> None:
    """Each property by attribute access (pyVmomi 9 reads one property with ``Fetch``): it
    parses and equals the collector's value (unset there: None or an empty list here)."""
    for prop in properties(mo._stub, type(mo)):
        report.attribute_reads += 1
        name = f"{mo._wsdlName} {mo._moId}.{prop.name}"
        try:
            value = getattr(mo, prop.name)
        except Exception as exc:
            report.failures.append(f"{name} (attribute): {type(exc).__name__}: {exc}")
            continue
        if f"{mo._wsdlName}.{prop.name}" in VOLATILE:
            continue
        if prop.name in values:
            if repr(value) != repr(values[prop.name]):
                report.failures.append(f"{name}: attribute and collector values differ")
        elif value not in (None, []):
            report.failures.append(f"{name}: unset for the collector, {value!r} by attribute")
