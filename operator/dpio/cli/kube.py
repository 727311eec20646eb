"""The Kubernetes side of the CLI: one API connection, Secrets and the dpio objects, read only.

Configured like kubectl (--kubeconfig/--context, $KUBECONFIG, ~/.kube/config, else in-cluster;
`dpio.kube.credentials`). Calls are synchronous: a CLI does one thing at a time. API errors
come out as `KubeError`, the operator's own error type, so messages read the same.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from dpio.api.common import GROUP, VERSION
from dpio.api.crd import HOST_PASSTHROUGH_POLICY, VM_DEVICE_ASSIGNMENT
from dpio.cli.connection import UsageError
from dpio.kube import credentials
from dpio.kube.rest import (
    KubeError,
    NotFoundError,
    SyncApiServer,
    custom_object_path,
    path,
    secret_data,
    secret_path,
)

__all__ = ["ASSIGNMENTS", "POLICIES", "Kube", "KubeError", "NotFoundError", "add_kube_flags"]

POLICIES = HOST_PASSTHROUGH_POLICY.plural
ASSIGNMENTS = VM_DEVICE_ASSIGNMENT.plural


def add_kube_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group(
        "Kubernetes", "Default: $KUBECONFIG or ~/.kube/config, else in-cluster."
    )
    group.add_argument("--kubeconfig", help="path to a kubeconfig file")
    group.add_argument("--context", help="kubeconfig context to use")


def api_server(kubeconfig: str | None, context: str | None) -> SyncApiServer:
    """From the flags, $KUBECONFIG / ~/.kube/config, or the in-cluster config."""
    try:
        creds = credentials.load(kubeconfig, context, prefer_in_cluster=False)
    except credentials.ConfigError as err:
        message = str(err)
        if not message.startswith("no Kubernetes configuration"):
            message = f"no Kubernetes configuration: {message}"
        raise UsageError(message) from err
    return SyncApiServer(creds)


@dataclass
class Kube:
    """Connects on first use, so commands that never need Kubernetes never need a kubeconfig."""

    kubeconfig: str | None = None
    context: str | None = None
    _api: SyncApiServer | None = field(default=None, repr=False)

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> Kube:
        return cls(getattr(args, "kubeconfig", None), getattr(args, "context", None))

    @property
    def api(self) -> SyncApiServer:
        if self._api is None:
            self._api = api_server(self.kubeconfig, self.context)
        return self._api

    def read_secret(self, namespace: str, name: str) -> Mapping[str, bytes]:
        """A Secret's decoded data (values never printed)."""
        return secret_data(self.api.request("GET", secret_path(namespace, name)))

    def policies(self) -> list[dict[str, Any]]:
        return self._list(custom_object_path(GROUP, VERSION, POLICIES))

    def assignments(self, namespace: str | None) -> list[dict[str, Any]]:
        """In `namespace`, or in all namespaces when None."""
        return self._list(custom_object_path(GROUP, VERSION, ASSIGNMENTS, namespace=namespace))

    def namespace_labels(self, namespace: str) -> Mapping[str, str]:
        """A namespace's labels (for consumers.namespaceSelector); none if it does not exist."""
        try:
            found = self.api.request("GET", path("api", "v1", "namespaces", namespace))
        except NotFoundError:
            return {}
        return dict((found.get("metadata") or {}).get("labels") or {})

    def close(self) -> None:
        """Nothing is held between calls."""

    def _list(self, where: str) -> list[dict[str, Any]]:
        return list(self.api.request("GET", where).get("items") or [])
