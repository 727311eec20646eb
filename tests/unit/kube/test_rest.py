"""`dpio.kube.rest` against a small aiohttp server: paths quoted, merge patches sent as such,
the API server's Status message in errors, and a 401 answered by reading the token again once."""

from __future__ import annotations

import asyncio
import base64
import json
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from dpio.kube.credentials import Credentials, ExecPlugin
from dpio.kube.rest import (
    MERGE_PATCH,
    ApiServer,
    KubeError,
    NotFoundError,
    SyncApiServer,
    custom_object_path,
    error,
    secret_data,
    secret_path,
)


def test_paths_quote_what_users_named() -> None:
    assert custom_object_path("dpio.io", "v1alpha1", "vmdeviceassignments", "a/b", "ns") == (
        "/apis/dpio.io/v1alpha1/namespaces/ns/vmdeviceassignments/a%2Fb"
    )
    assert custom_object_path("dpio.io", "v1alpha1", "hostpassthroughpolicies") == (
        "/apis/dpio.io/v1alpha1/hostpassthroughpolicies"
    )


def test_errors_carry_the_status_message_and_say_whether_to_retry() -> None:
    status = json.dumps({"kind": "Status", "message": 'leases "x" already exists'}).encode()
    conflict = error("POST", "/x", 409, status)
    assert str(conflict) == 'POST /x: 409 leases "x" already exists'
    assert conflict.retryable
    assert not isinstance(conflict, NotFoundError)
    assert isinstance(error("GET", "/x", 404, b"<html>"), NotFoundError)
    assert not error("GET", "/x", 403, b"").retryable
    assert error("GET", "/x", 503, b"").retryable


class Server:
    """Accepts the token in `token.txt` at the moment of the request; records what it got."""

    def __init__(self, token_file: Path) -> None:
        self.token_file = token_file
        self.seen: list[tuple[str, str, str, str]] = []

    async def handle(self, request: web.Request) -> web.Response:
        auth = request.headers.get("Authorization", "")
        body = await request.text()
        self.seen.append((request.method, request.raw_path, request.content_type, auth))
        if auth != f"Bearer {self.token_file.read_text()}":
            return web.json_response({"kind": "Status", "message": "Unauthorized"}, status=401)
        return web.json_response({"echo": json.loads(body) if body else None})


async def _serve(server: Server) -> tuple[web.AppRunner, int]:
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", server.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    return runner, port


def test_a_401_reads_the_token_again_once_then_fails(tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("old")
    server = Server(tmp_path / "accepted")
    server.token_file.write_text("old")

    async def scenario() -> tuple[Any, Any, KubeError]:
        runner, port = await _serve(server)
        creds = Credentials(server=f"http://127.0.0.1:{port}", token_file=str(token))
        api = ApiServer(creds)
        try:
            first = await api.request("PATCH", "/a", {"x": 1}, content_type=MERGE_PATCH)
            # The kubelet rotated the token: the server takes only the new one now.
            token.write_text("new")
            server.token_file.write_text("new")
            second = await api.request("GET", "/b")
            server.token_file.write_text("newer")  # and the file never gets it
            with pytest.raises(KubeError) as refused:
                await api.request("GET", "/c")
            return first, second, refused.value
        finally:
            await api.close()
            await runner.cleanup()

    first, second, refused = asyncio.run(scenario())
    assert first == {"echo": {"x": 1}}
    assert second == {"echo": None}
    assert refused.status == 401
    assert "Unauthorized" in str(refused)
    assert [(m, p, a) for m, p, _, a in server.seen] == [
        ("PATCH", "/a", "Bearer old"),
        ("GET", "/b", "Bearer old"),  # refused: the token is read again, once
        ("GET", "/b", "Bearer new"),
        ("GET", "/c", "Bearer new"),
        ("GET", "/c", "Bearer new"),
    ]
    assert server.seen[0][2] == MERGE_PATCH


def test_the_blocking_client_speaks_the_same(tmp_path: Path) -> None:
    server = Server(tmp_path / "accepted")
    server.token_file.write_text("t")
    loop = asyncio.new_event_loop()
    runner, port = loop.run_until_complete(_serve(server))
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        api = SyncApiServer(Credentials(server=f"http://127.0.0.1:{port}", token="t"))
        assert api.request("POST", "/r", {"y": [1]}) == {"echo": {"y": [1]}}
        server.token_file.write_text("other")
        with pytest.raises(KubeError) as refused:
            api.request("GET", "/r")
        assert refused.value.status == 401
    finally:
        asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()
    assert [a for _, _, _, a in server.seen] == ["Bearer t", "Bearer t", "Bearer t"]


def test_an_exec_plugin_runs_off_the_loop(tmp_path: Path) -> None:
    """A plugin that takes half a second (a cloud CLI) leaves the loop free meanwhile."""
    plugin = tmp_path / "slow-plugin"
    plugin.write_text(
        f"#!{sys.executable}\n"
        "import json, time\n"
        "time.sleep(0.5)\n"
        "print(json.dumps({'status': {'token': 't'}}))\n"
    )
    plugin.chmod(0o755)
    server = Server(tmp_path / "accepted")
    server.token_file.write_text("t")

    async def scenario() -> tuple[Any, int]:
        runner, port = await _serve(server)
        creds = Credentials(
            server=f"http://127.0.0.1:{port}", exec_plugin=ExecPlugin(command=str(plugin))
        )
        api = ApiServer(creds)
        ticks = 0

        async def tick() -> None:
            nonlocal ticks
            while True:
                await asyncio.sleep(0.02)
                ticks += 1

        ticker = asyncio.create_task(tick())
        try:
            return await api.request("GET", "/x"), ticks
        finally:
            ticker.cancel()
            await api.close()
            await runner.cleanup()

    answer, ticks = asyncio.run(scenario())
    assert answer == {"echo": None}
    assert ticks >= 10  # 0.5 s of plugin at 20 ms a tick; on the loop it would be 0


def test_secret_data_is_bytes_whatever_they_hold() -> None:
    secret = {"data": {"a": base64.b64encode(b"\xff\x00").decode(), "b": "w6k="}}
    assert secret_data(secret) == {"a": b"\xff\x00", "b": "é".encode()}
    assert secret_data({}) == {}
    assert secret_path("ns", "a/b") == "/api/v1/namespaces/ns/secrets/a%2Fb"
