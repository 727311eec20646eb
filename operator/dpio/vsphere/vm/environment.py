"""What the EnvironmentBrowser says about a host, cached while it cannot have changed.

- `QueryConfigOption(key, host)`: the per-VM passthrough maximum depends only on the host's ESXi
  version and the VM's hardware version (vSphere configuration maximums), so it is kept per
  (ESXi version, hardware version) and asked of whichever host first needs it: a fleet of hosts
  on one release costs one call, not one per host (125 at a restart over 125 hosts before;
  docs/benchmarks.md). An upgraded host reports a new version, a new entry; a host whose
  version is unknown is asked for itself.
- `QueryConfigTarget(host)`: `pciPassthrough` lists the host's ACTIVE passthrough devices and
  `dynamicPassthrough` their vendor/device/label (vSphere API reference, ConfigTarget), all of
  which `HostSystem.config.pciPassthruInfo` shows too (passthruActive, hardwareLabel). The
  answer is kept per host together with a fingerprint of that property, read anyway in the
  same RetrievePropertiesEx as the VM; a changed fingerprint (a device enabled, activated by a
  reboot or a rebind, relabelled) asks again. Without the property (host not reachable) the
  answer is never cached.

Concurrent reconciles that need the same answer share one call (single_flight.py): VMs on one
host, reconciled together, cost one `QueryConfigTarget` and one `QueryConfigOption` per host.

A converged VM then costs ONE call (docs/design.md, "vCenter access": at most 3).
"""

from __future__ import annotations

import threading
from collections.abc import Hashable
from typing import Any

from dpio.planner.vm.observed import ConfigTarget
from dpio.vsphere.properties import moref_id
from dpio.vsphere.single_flight import SingleFlight
from dpio.vsphere.vm import target as vm_target


def passthru_fingerprint(infos: Any) -> Hashable | None:
    """What of `config.pciPassthruInfo` a ConfigTarget depends on; None when unknown."""
    if infos is None:
        return None
    return tuple(
        sorted(
            (
                str(getattr(i, "id", "")).lower(),
                bool(getattr(i, "passthruActive", False)),
                str(getattr(i, "hardwareLabel", "") or ""),
            )
            for i in infos
        )
    )


class EnvironmentCache:
    """Thread-safe; one entry per host for targets, per versions for limits."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._limits: dict[tuple[str, str], int | None] = {}
        self._targets: dict[str, tuple[Hashable, ConfigTarget]] = {}
        self._limit_calls: SingleFlight[int | None] = SingleFlight()
        self._target_calls: SingleFlight[ConfigTarget] = SingleFlight()

    def passthrough_limit(self, browser: Any, host: Any, host_version: str, key: str) -> int | None:
        cache_key = (host_version, key) if host_version else (f"host {moref_id(host)}", key)
        with self._lock:
            if cache_key in self._limits:
                return self._limits[cache_key]

        def ask() -> int | None:
            with self._lock:  # a flight that ended between our look and ours answered it
                if cache_key in self._limits:
                    return self._limits[cache_key]
            option = browser.QueryConfigOption(key=key or None, host=host)
            limit = vm_target.passthrough_limit(option)
            with self._lock:
                self._limits[cache_key] = limit
            return limit

        return self._limit_calls.do(cache_key, ask)

    def config_target(self, browser: Any, host: Any, fingerprint: Hashable | None) -> ConfigTarget:
        host_moref = moref_id(host)
        with self._lock:
            known = self._targets.get(host_moref)
        if fingerprint is not None and known is not None and known[0] == fingerprint:
            return known[1]

        def ask() -> ConfigTarget:
            target = vm_target.config_target(browser.QueryConfigTarget(host=host))
            with self._lock:
                if fingerprint is None:
                    self._targets.pop(host_moref, None)
                else:
                    self._targets[host_moref] = (fingerprint, target)
            return target

        # An unknown state (None) shares a call under way but is never cached.
        return self._target_calls.do((host_moref, fingerprint), ask)
