"""A Kubernetes API connection that goes silent fails the call (retryable) instead of holding a
worker for ever; the next call gets a new connection (the fault suite's watch silence, in small).
"""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator

import pytest

from dpio.kube.client import KubeClient, KubeError, ObjectRef
from dpio.kube.credentials import Credentials
from dpio.kube.rest import ApiServer


class FreezableServer:
    """HTTP/1.1 on loopback answering `{}` to every request, keeping connections alive;
    `freeze()` makes the connections open at that moment read on and never answer again."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.frozen: set[int] = set()
        self.connections: list[socket.socket] = []
        self.answered = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def freeze(self) -> None:
        self.frozen.update(id(c) for c in self.connections)

    def close(self) -> None:
        self.sock.close()
        for conn in self.connections:
            conn.close()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections.append(conn)
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        buffer = b""
        try:
            while True:
                while b"\r\n\r\n" not in buffer:
                    chunk = conn.recv(65536)
                    if not chunk:
                        return
                    buffer += chunk
                head, _, buffer = buffer.partition(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n")[1:]:
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value)
                while len(buffer) < length:
                    buffer += conn.recv(65536)
                buffer = buffer[length:]
                if id(conn) in self.frozen:
                    continue  # read, never answered: the socket stays open
                self.answered += 1
                conn.sendall(
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                    b"Content-Length: 2\r\n\r\n{}"
                )
        except OSError:
            return


@pytest.fixture
def server() -> Iterator[FreezableServer]:
    srv = FreezableServer()
    yield srv
    srv.close()


def test_a_silent_connection_fails_the_call_and_the_next_call_gets_a_new_one(
    server: FreezableServer,
) -> None:
    api = ApiServer(Credentials(server=f"http://127.0.0.1:{server.port}"), timeout=(2.0, 1.0))
    kube = KubeClient(api)
    ref = ObjectRef("hostpassthroughpolicies", "HostPassthroughPolicy", "gpus")

    async def scenario() -> KubeError:
        await kube.patch_status(ref, {"observedGeneration": 1})
        server.freeze()
        with pytest.raises(KubeError) as cut:
            # Without a read timeout this waits for ever; the outer limit turns that into a failure.
            await asyncio.wait_for(kube.patch_status(ref, {"observedGeneration": 2}), 20)
        await asyncio.wait_for(kube.patch_status(ref, {"observedGeneration": 3}), 20)
        await kube.close()
        return cut.value

    err = asyncio.run(scenario())
    assert err.retryable
    assert "timed out" in str(err).lower()
    assert server.answered == 2
    assert len(server.connections) == 2
