"""The operator's own API calls (`dpio.kube.rest`, no kubernetes client) against the sandbox's
kube-apiserver: the admin's client certificate from its kubeconfig, a ServiceAccount token the
way a pod has it (a token file, renewed after a 401), Leases with their conflicts, Secrets and
Events."""

from __future__ import annotations

import asyncio
import datetime
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.e2e.conftest import apply, kubectl

from dpio.kube import client, credentials
from dpio.kube.client import KubeClient, KubeError, NotFoundError, ObjectRef
from dpio.kube.lease import KubeLeaseStore, LeaseConflictError, LeaseRecord
from dpio.kube.rest import ApiServer, SyncApiServer, path
from dpio_sandbox.sandbox import Sandbox

pytestmark = pytest.mark.sandbox


@pytest.fixture(scope="module")
def namespace(sandbox: Sandbox) -> Iterator[str]:
    name = f"rest-{uuid.uuid4().hex[:6]}"
    kubectl(sandbox, "create", "namespace", name)
    yield name
    kubectl(sandbox, "delete", "namespace", name, "--wait=false")


def _admin(sandbox: Sandbox) -> credentials.Credentials:
    return credentials.from_kubeconfig([sandbox.kubeconfig])


def test_the_admin_kubeconfig_is_a_client_certificate_and_it_is_accepted(sandbox: Sandbox) -> None:
    creds = _admin(sandbox)
    assert creds.cert_data
    assert creds.key_data
    assert creds.ca_data
    review = SyncApiServer(creds).request(
        "POST",
        "/apis/authentication.k8s.io/v1/selfsubjectreviews",
        {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"},
    )
    assert "system:masters" in review["status"]["userInfo"]["groups"]


def test_a_pods_token_file_is_used_and_read_again_after_a_401(
    sandbox: Sandbox, namespace: str, tmp_path: Path
) -> None:
    admin = _admin(sandbox)
    host, _, port = admin.server.removeprefix("https://").rpartition(":")
    (tmp_path / "ca.crt").write_bytes(admin.ca_data or b"")
    (tmp_path / "namespace").write_text(namespace)
    token = tmp_path / "token"
    token.write_text("not-a-token")
    env = {"KUBERNETES_SERVICE_HOST": host, "KUBERNETES_SERVICE_PORT": port}
    pod = credentials.in_cluster(env, tmp_path)
    assert pod is not None
    assert pod.namespace == namespace
    api = SyncApiServer(pod)
    who = {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}
    with pytest.raises(KubeError) as refused:
        api.request("POST", "/apis/authentication.k8s.io/v1/selfsubjectreviews", who)
    assert refused.value.status == 401

    # The kubelet renews the file; the 401 made us forget the old token, so the next call reads it.
    token.write_text(kubectl(sandbox, "create", "token", "default", "-n", namespace).strip())
    review = api.request("POST", "/apis/authentication.k8s.io/v1/selfsubjectreviews", who)
    assert review["status"]["userInfo"]["username"] == f"system:serviceaccount:{namespace}:default"


def test_a_lease_is_created_renewed_and_a_stale_write_conflicts(
    sandbox: Sandbox, namespace: str
) -> None:
    now = datetime.datetime.now(datetime.UTC)

    async def scenario() -> tuple[LeaseRecord | None, LeaseRecord, LeaseRecord, LeaseRecord]:
        store = KubeLeaseStore(ApiServer(_admin(sandbox)), namespace, "dpio-test")
        try:
            missing = await store.get()
            mine = LeaseRecord("a", 15, acquire_time=now, renew_time=now)
            created = await store.create(mine)
            renewed = await store.replace(
                LeaseRecord(
                    "a", 15, now, now + datetime.timedelta(seconds=2), 0, created.resource_version
                )
            )
            with pytest.raises(LeaseConflictError):
                await store.replace(LeaseRecord("b", 15, now, now, 1, created.resource_version))
            with pytest.raises(LeaseConflictError):
                await store.create(mine)
            read = await store.get()
            assert read is not None
            return missing, created, renewed, read
        finally:
            await store.close()

    missing, created, renewed, read = asyncio.run(scenario())
    assert missing is None
    assert created.holder == "a"
    assert created.duration == 15
    assert created.resource_version
    assert created.acquire_time == now  # MicroTime keeps the microseconds
    assert renewed.resource_version != created.resource_version
    assert read == renewed
    lease = json.loads(kubectl(sandbox, "get", "lease", "dpio-test", "-n", namespace, "-o", "json"))
    assert lease["spec"]["holderIdentity"] == "a"


def test_secrets_are_decoded_events_posted_and_a_missing_object_is_not_found(
    sandbox: Sandbox, namespace: str
) -> None:
    apply(
        sandbox,
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "vc", "namespace": namespace},
            "stringData": {"username": "administrator@vsphere.local", "password": "é:secret"},
        },
    )
    ref = ObjectRef("vmdeviceassignments", "VMDeviceAssignment", "gpus", namespace, uid="u-1")

    async def scenario() -> dict[str, bytes]:
        kube = KubeClient(ApiServer(_admin(sandbox)), reporter="dpio-test")
        try:
            secret = await kube.read_secret(namespace, "vc")
            await kube.emit_event(
                ref, type_="Normal", reason="Tested", message="x" * 2000, namespace=namespace
            )
            with pytest.raises(NotFoundError) as missing:
                await kube.read_secret(namespace, "no-such-secret")
            assert not missing.value.retryable
            assert missing.value.status == 404
            with pytest.raises(NotFoundError):
                await kube.patch_status(ref, {"observedGeneration": 1})
            return secret
        finally:
            await kube.close()

    secret = asyncio.run(scenario())
    assert secret == {
        "username": b"administrator@vsphere.local",
        "password": "é:secret".encode(),
    }
    events: list[dict[str, Any]] = json.loads(
        kubectl(sandbox, "get", "events", "-n", namespace, "-o", "json")
    )["items"]
    (event,) = [e for e in events if e["reason"] == "Tested"]
    assert event["involvedObject"] == {
        "apiVersion": "dpio.io/v1alpha1",
        "kind": "VMDeviceAssignment",
        "name": "gpus",
        "namespace": namespace,
        "uid": "u-1",
    }
    assert event["source"] == {"component": "dpio-test"}
    assert len(event["message"]) == 1024


def test_names_are_listed_page_by_page_as_metadata_only(
    sandbox: Sandbox, namespace: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What the startup wait lists (app/cache_sync.py): every name, across pages."""
    monkeypatch.setattr(client, "LIST_PAGE", 2)  # 5 objects and the namespace's own: 3 pages
    names = [f"cm-{i}" for i in range(5)]
    for name in names:
        kubectl(sandbox, "create", "configmap", name, "-n", namespace)

    async def scenario() -> tuple[set[tuple[str, str]], set[tuple[str, str]]]:
        kube = KubeClient(ApiServer(_admin(sandbox)))
        try:
            maps = await kube.list_keys(path("api", "v1", "namespaces", namespace, "configmaps"))
            spaces = await kube.list_keys(path("api", "v1", "namespaces"))
            return maps, spaces
        finally:
            await kube.close()

    maps, spaces = asyncio.run(scenario())
    assert {(namespace, n) for n in names} <= maps
    assert {n for _, n in maps} - set(names) <= {"kube-root-ca.crt"}  # what the API server adds
    assert ("", namespace) in spaces
    assert ("", "kube-system") in spaces
