"""A vCenter answer is freed by reference counting once unused (soap_memory.py): pyVmomi's own
deserializer leaves it in a reference cycle that only a full garbage collection frees."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from typing import Any

import pytest
from pyVmomi import SoapAdapter, vmodl

from dpio.vsphere import soap_memory

_ANSWER = b"""<?xml version="1.0" encoding="UTF-8"?>
<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"
 xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
<soapenv:Body><RetrievePropertiesExResponse xmlns="urn:vim25"><returnval>
%s
</returnval></RetrievePropertiesExResponse></soapenv:Body></soapenv:Envelope>"""
_OBJECT = (
    b'<objects><obj type="VirtualMachine">vm-%d</obj><propSet><name>name</name>'
    b'<val xsi:type="xsd:string">vm-%d</val></propSet></objects>'
)
_RESULT: Any = vmodl.query.PropertyCollector.RetrieveResult


def _answer(objects: int) -> bytes:
    return _ANSWER % b"".join(_OBJECT % (i, i) for i in range(objects))


@pytest.fixture
def no_collector() -> Iterator[None]:
    """Only reference counting frees objects while a test runs."""
    gc.collect()
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def _left_for_the_collector(deserializer: type) -> int:
    result = deserializer(None).Deserialize(_answer(50), _RESULT)
    assert [o.obj._moId for o in result.objects][:2] == ["vm-0", "vm-1"]  # parsed as pyVmomi does
    del result
    return gc.collect()


def test_pyvmomis_deserializer_leaves_each_answer_to_the_collector(no_collector: None) -> None:
    # What the fix is for: if this ever fails, pyVmomi no longer makes the cycle.
    assert _left_for_the_collector(soap_memory._Base) > 50


def test_the_acyclic_deserializer_leaves_nothing(no_collector: None) -> None:
    assert _left_for_the_collector(soap_memory.AcyclicResponseDeserializer) == 0


def test_a_fault_is_parsed_as_before() -> None:
    fault = (
        b'<?xml version="1.0" encoding="UTF-8"?>'
        b'<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/">'
        b"<soapenv:Body><soapenv:Fault><faultcode>ServerFaultCode</faultcode>"
        b"<faultstring>The session is not authenticated.</faultstring><detail>"
        b'<NotAuthenticatedFault xmlns="urn:vim25" '
        b'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:type="NotAuthenticated">'
        b"</NotAuthenticatedFault></detail></soapenv:Fault></soapenv:Body></soapenv:Envelope>"
    )
    ours = soap_memory.AcyclicResponseDeserializer(None).Deserialize(fault, _RESULT)
    theirs = soap_memory._Base(None).Deserialize(fault, _RESULT)
    assert type(ours) is type(theirs)
    assert ours.msg == theirs.msg == "The session is not authenticated."


def test_install_puts_it_where_the_stub_looks_and_is_idempotent() -> None:
    soap_memory.install()
    soap_memory.install()
    assert SoapAdapter.SoapResponseDeserializer is soap_memory.AcyclicResponseDeserializer
    assert soap_memory.AcyclicResponseDeserializer.__mro__[1] is soap_memory._Base
