"""The Kubernetes side of a benchmark: bulk create, list, convergence waits, and the API
server's own request counters (`apiserver_request_total`), read through kubectl."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kubernetes import client as k8s
from kubernetes import config as k8s_config

GROUP, VERSION = "dpio.io", "v1alpha1"
HPP, VMDA = "hostpassthroughpolicies", "vmdeviceassignments"
Body = dict[str, Any]
RequestKey = tuple[str, str, str]  # (verb, resource, subresource)
# Not POST: the benchmark creates the objects itself; the operator only updates them.
_WRITE_VERBS = {"PUT", "PATCH", "DELETE", "APPLY"}
_METRIC = re.compile(r"^apiserver_request_total\{(?P<labels>[^}]*)\}\s+(?P<value>\S+)$")
_LABEL = re.compile(r'(\w+)="([^"]*)"')


@dataclass
class Kube:
    api: k8s.ApiClient
    kubectl: Path
    kubeconfig: Path

    @classmethod
    def connect(cls, kubeconfig: Path, kubectl: Path) -> Kube:
        api = k8s_config.new_client_from_config(  # type: ignore[no-untyped-call]
            config_file=str(kubeconfig)
        )
        # Bulk creates from a thread pool: one connection per thread.
        api.rest_client.pool_manager.connection_pool_kw["maxsize"] = 16
        return cls(api, kubectl, kubeconfig)

    @property
    def custom(self) -> k8s.CustomObjectsApi:
        return k8s.CustomObjectsApi(self.api)

    def create(self, body: Body) -> None:
        plural = HPP if body["kind"] == "HostPassthroughPolicy" else VMDA
        namespace = body["metadata"].get("namespace")
        if namespace:
            self.custom.create_namespaced_custom_object(GROUP, VERSION, namespace, plural, body)
        else:
            self.custom.create_cluster_custom_object(GROUP, VERSION, plural, body)

    def create_many(self, bodies: Iterable[Body], threads: int = 8) -> float:
        """Create all ``bodies``; the seconds it took."""
        started = time.monotonic()
        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(self.create, bodies))
        return time.monotonic() - started

    def namespace(self, name: str) -> None:
        body = k8s.V1Namespace(metadata=k8s.V1ObjectMeta(name=name))
        try:
            k8s.CoreV1Api(self.api).create_namespace(body)
        except k8s.ApiException as err:
            if err.status != 409:
                raise

    def list(self, plural: str) -> list[Body]:
        if plural == HPP:
            result: Any = self.custom.list_cluster_custom_object(GROUP, VERSION, plural)
        else:
            result = self.custom.list_custom_object_for_all_namespaces(GROUP, VERSION, plural)
        items: list[Body] = result["items"]
        return items

    def get(self, plural: str, name: str) -> Body:
        body: Any = self.custom.get_cluster_custom_object(GROUP, VERSION, plural, name)
        return dict(body)

    def request_totals(self) -> Counter[RequestKey]:
        """`apiserver_request_total` summed by (verb, resource, subresource), all clients."""
        out = subprocess.run(
            [str(self.kubectl), f"--kubeconfig={self.kubeconfig}", "get", "--raw", "/metrics"],
            capture_output=True,
            text=True,
            check=True,
        )
        return parse_request_totals(out.stdout)


def parse_request_totals(metrics: str) -> Counter[RequestKey]:
    """Sum `apiserver_request_total` samples of a Prometheus text page by (verb, resource,
    subresource); other labels (code, scope, component, ...) are added together."""
    totals: Counter[RequestKey] = Counter()
    for line in metrics.splitlines():
        match = _METRIC.match(line)
        if match:
            labels = dict(_LABEL.findall(match["labels"]))
            key = (
                labels.get("verb", ""),
                labels.get("resource", ""),
                labels.get("subresource", ""),
            )
            totals[key] += int(float(match["value"]))
    return totals


def writes(delta: Mapping[RequestKey, int], resources: Iterable[str] = (HPP, VMDA)) -> int:
    """Updates, patches and deletes of ``resources`` in a counter delta (creates excluded)."""
    wanted = set(resources)
    return sum(n for (verb, res, _), n in delta.items() if verb in _WRITE_VERBS and res in wanted)


def delta(after: Counter[RequestKey], before: Counter[RequestKey]) -> Counter[RequestKey]:
    return Counter({k: v - before.get(k, 0) for k, v in after.items() if v - before.get(k, 0)})


def by_verb_resource(counts: Mapping[RequestKey, int]) -> list[tuple[str, int]]:
    rows = [
        (f"{verb} {res}{'/' + sub if sub else ''}", n) for (verb, res, sub), n in counts.items()
    ]
    return sorted(rows, key=lambda r: (-r[1], r[0]))


def condition(body: Body, type_: str) -> Body | None:
    for cond in body.get("status", {}).get("conditions") or []:
        if cond.get("type") == type_:
            found: Body = cond
            return found
    return None


def settled(body: Body) -> bool:
    """The operator has seen this generation and is not working on it (kstatus)."""
    status = body.get("status") or {}
    reconciling = condition(body, "Reconciling")
    return (
        status.get("observedGeneration") == body["metadata"].get("generation")
        and reconciling is not None
        and reconciling.get("status") == "False"
    )


def ready(body: Body) -> bool:
    cond = condition(body, "Ready")
    return settled(body) and cond is not None and cond.get("status") == "True"


@dataclass(frozen=True)
class Wait:
    seconds: float | None  # None: timed out
    done: int
    total: int
    last: list[Body]


def wait_all(
    kube: Kube,
    plural: str,
    total: int,
    done: Callable[[Body], bool],
    *,
    since: float,
    timeout: float,
    poll: float = 0.5,
) -> Wait:
    """Poll until ``total`` objects satisfy ``done``; seconds counted from ``since`` (monotonic)."""
    deadline = since + timeout
    count, items, shown = 0, [], 0.0
    while True:
        listed = time.monotonic()
        items = kube.list(plural)
        count = sum(1 for body in items if done(body))
        now = time.monotonic()
        if count >= total:
            return Wait(now - since, count, total, items)
        if now > deadline:
            return Wait(None, count, total, items)
        if now - shown > 10:
            shown = now
            print(f"   {count}/{total} {plural} done after {now - since:.0f}s", file=sys.stderr)
        # Listing thousands of objects costs the API server and us CPU the operator then lacks:
        # poll no more than a third of the time.
        time.sleep(max(poll, 2 * (now - listed)))
