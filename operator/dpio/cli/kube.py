"""The Kubernetes side of the CLI: one API client, Secrets and the dpio objects, read only.

The official client, configured like kubectl (--kubeconfig/--context, $KUBECONFIG, in-cluster).
Calls are synchronous: a CLI does one thing at a time. API errors come out as `KubeError` from
`dpio.kube.client`, the operator's own error type, so messages read the same.
"""

from __future__ import annotations

import argparse
import base64
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import urllib3
from kubernetes import client as k8s
from kubernetes import config as k8s_config
from kubernetes.client.exceptions import ApiException

from dpio.api.common import GROUP, VERSION
from dpio.cli.connection import UsageError
from dpio.kube.client import KubeError, NotFoundError

POLICIES = "hostpassthroughpolicies"
ASSIGNMENTS = "vmdeviceassignments"


def add_kube_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("Kubernetes", "Default: $KUBECONFIG, else in-cluster.")
    group.add_argument("--kubeconfig", help="path to a kubeconfig file")
    group.add_argument("--context", help="kubeconfig context to use")


def api_client(kubeconfig: str | None, context: str | None) -> k8s.ApiClient:
    """An API client from the flags, $KUBECONFIG / ~/.kube/config, or the in-cluster config."""
    try:
        if kubeconfig or context:
            loaded: Any = k8s_config.new_client_from_config(  # type: ignore[no-untyped-call]
                config_file=kubeconfig, context=context
            )
            return loaded  # type: ignore[no-any-return]
        try:
            k8s_config.load_kube_config()  # type: ignore[no-untyped-call]
        except (k8s_config.ConfigException, OSError):
            k8s_config.load_incluster_config()  # type: ignore[no-untyped-call]
    except (k8s_config.ConfigException, OSError) as err:
        raise UsageError(f"no Kubernetes configuration: {err}") from err
    return k8s.ApiClient()


def _call(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    try:
        return fn(*args, **kwargs)
    except ApiException as err:
        cls = NotFoundError if err.status == 404 else KubeError
        raise cls(f"{fn.__name__}: {err.status} {err.reason}", status=err.status) from err
    except (OSError, urllib3.exceptions.HTTPError) as err:  # unreachable, TLS, retries spent
        raise KubeError(f"Kubernetes API: {err}") from err


@dataclass
class Kube:
    """Connects on first use, so commands that never need Kubernetes never need a kubeconfig."""

    kubeconfig: str | None = None
    context: str | None = None
    _api: k8s.ApiClient | None = field(default=None, repr=False)

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> Kube:
        return cls(getattr(args, "kubeconfig", None), getattr(args, "context", None))

    @property
    def api(self) -> k8s.ApiClient:
        if self._api is None:
            self._api = api_client(self.kubeconfig, self.context)
        return self._api

    def read_secret(self, namespace: str, name: str) -> Mapping[str, str]:
        """A Secret's decoded data (values never printed)."""
        secret = _call(k8s.CoreV1Api(self.api).read_namespaced_secret, name, namespace)
        data: Mapping[str, str] = secret.data or {}
        return {key: base64.b64decode(value).decode() for key, value in data.items()}

    def policies(self) -> list[dict[str, Any]]:
        custom = k8s.CustomObjectsApi(self.api)
        listed = _call(custom.list_cluster_custom_object, GROUP, VERSION, POLICIES)
        return list(listed.get("items", []))

    def assignments(self, namespace: str | None) -> list[dict[str, Any]]:
        """In `namespace`, or in all namespaces when None."""
        custom = k8s.CustomObjectsApi(self.api)
        if namespace is None:
            listed = _call(custom.list_cluster_custom_object, GROUP, VERSION, ASSIGNMENTS)
        else:
            listed = _call(
                custom.list_namespaced_custom_object, GROUP, VERSION, namespace, ASSIGNMENTS
            )
        return list(listed.get("items", []))

    def namespace_labels(self, namespace: str) -> Mapping[str, str]:
        """A namespace's labels (for consumers.namespaceSelector); none if it does not exist."""
        try:
            found = _call(k8s.CoreV1Api(self.api).read_namespace, namespace)
        except NotFoundError:
            return {}
        return dict(found.metadata.labels or {})

    def close(self) -> None:
        if self._api is not None:
            self._api.close()  # type: ignore[no-untyped-call]
