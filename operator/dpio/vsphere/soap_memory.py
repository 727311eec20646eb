"""Each vCenter answer freed as soon as it is no longer used, not at the next full collection.

pyVmomi (9.1.1, `SoapAdapter.SoapResponseDeserializer.Deserialize`) keeps the expat parser of a
successful answer on the deserializer, and the parser's handlers are bound methods of that
deserializer and of its `SoapDeserializer`, which holds the result: a reference cycle around
every answer. Reference counting never frees it; only the garbage collector's full collection
does, and with a large heap those are rare. Parsing an answer allocates thousands of objects,
so the cycle is already in the oldest generation when the call returns. At 1,000 VMs a whole
inventory read left ~4 MiB of pyVmomi objects waiting for a full collection; the operator makes
such reads all day (docs/benchmarks.md, finding 34).

`install()` puts a subclass in the stub's place that drops the parser from both deserializers
once the answer is parsed, on success and on failure alike: the cycle is gone, the answer is
freed by reference counting. pyVmomi looks the class up by its module-level name on each call
(`SoapStubAdapter.InvokeMethod`), so replacing that name is the whole change; the parsing
itself is pyVmomi's.
"""

from __future__ import annotations

from typing import Any

from pyVmomi import SoapAdapter

_soap: Any = SoapAdapter  # untyped module
_Base: Any = _soap.SoapResponseDeserializer


class AcyclicResponseDeserializer(_Base):  # type: ignore[misc]
    """pyVmomi's response deserializer, without the parser once the answer is parsed."""

    def Deserialize(self, *args: Any, **kwargs: Any) -> Any:  # noqa: N802 - pyVmomi's name
        try:
            return super().Deserialize(*args, **kwargs)
        finally:
            self.parser = None
            deser = getattr(self, "deser", None)
            if deser is not None:
                deser.parser = None


def install() -> None:
    """Idempotent; every stub made after it (and before) uses the acyclic deserializer."""
    if _soap.SoapResponseDeserializer is not AcyclicResponseDeserializer:
        _soap.SoapResponseDeserializer = AcyclicResponseDeserializer
