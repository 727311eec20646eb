"""A TCP proxy that can freeze the connections open at a given moment (no tests here).

Between the operator and kube-apiserver it stands for a load balancer or NAT that keeps a TCP
connection open but stopped forwarding: after `freeze()` the connections open at that moment
forward nothing more in either direction and are never closed (not even when a side closes),
while new connections pass as before. A watch on a frozen connection stays open and silent.
TLS passes through untouched (the API server's certificate is for 127.0.0.1, like the proxy).
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")

_CHUNK = 65536


@dataclass
class _Pair:
    frozen: bool = False
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    writers: list[asyncio.StreamWriter] = field(default_factory=list)


class FreezingProxy:
    """`start()`, then `port`; `freeze()` returns how many connections it froze; `close()`."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = 0
        self.accepted = 0  # connections accepted so far
        self._pairs: list[_Pair] = []
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.Server | None = None
        self._closing = asyncio.Event()

    def start(self) -> None:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._listen(), self._loop).result(timeout=10)

    def freeze(self) -> int:
        """Freeze every connection open now; new ones still pass."""

        def mark() -> int:
            live = [p for p in self._pairs if not p.frozen and not all(t.done() for t in p.tasks)]
            for pair in live:
                pair.frozen = True
            return len(live)

        return self._call(mark)

    def connections(self) -> tuple[int, int]:
        """(open and forwarding, frozen): what the proxy holds now."""

        def count() -> tuple[int, int]:
            open_ = [p for p in self._pairs if not all(t.done() for t in p.tasks)]
            return sum(1 for p in open_ if not p.frozen), sum(1 for p in open_ if p.frozen)

        return self._call(count)

    def close(self) -> None:
        async def shutdown() -> None:
            self._closing.set()
            if self._server is not None:
                self._server.close()
            for pair in self._pairs:
                for writer in pair.writers:
                    writer.close()
                for task in pair.tasks:
                    task.cancel()

        if self._thread.is_alive():
            asyncio.run_coroutine_threadsafe(shutdown(), self._loop).result(timeout=10)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=10)
        if not self._thread.is_alive() and not self._loop.is_closed():
            self._loop.close()

    def kubeconfig(self, original: Path, path: Path) -> Path:
        """A copy of `original` (the sandbox's JSON kubeconfig) whose server is this proxy."""
        config = json.loads(original.read_text())
        for cluster in config["clusters"]:
            cluster["cluster"]["server"] = f"https://127.0.0.1:{self.port}"
        path.write_text(json.dumps(config, indent=2))
        path.chmod(0o600)
        return path

    def _call(self, fn: Callable[[], T]) -> T:
        """`fn()` on the proxy's loop (its state belongs to that thread)."""

        async def run() -> T:
            return fn()

        return asyncio.run_coroutine_threadsafe(run(), self._loop).result(timeout=10)

    async def _listen(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _accept(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        self.accepted += 1
        try:
            server_r, server_w = await asyncio.open_connection(*self.target)
        except OSError:
            client_w.close()
            return
        pair = _Pair(writers=[client_w, server_w])
        self._pairs.append(pair)
        pair.tasks = [
            asyncio.create_task(self._pump(pair, client_r, server_w)),
            asyncio.create_task(self._pump(pair, server_r, client_w)),
        ]

    async def _pump(
        self, pair: _Pair, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        try:
            while True:
                data = await reader.read(_CHUNK)
                if pair.frozen:
                    break  # what was read is dropped; the sockets stay open until close()
                if not data:
                    if writer.can_write_eof():
                        writer.write_eof()
                    return
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            if not pair.frozen:
                writer.close()
            return
        await self._closing.wait()
