"""``python -m dpio_sandbox up|down|env|install|demo``, as used by ``make sandbox``, ``make run``,
``make demo``."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from dpio_sandbox import demo, install, node, nodehost, sandbox, vcsim
from dpio_sandbox.paths import default_state_dir


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dpio_sandbox", description=__doc__)
    parser.add_argument("command", choices=["up", "down", "env", "install", "demo"])
    parser.add_argument("--state-dir", type=Path, default=default_state_dir())
    parser.add_argument("--inventory", type=Path, default=vcsim.DEFAULT_INVENTORY)
    parser.add_argument(
        "--node",
        action="store_true",
        help="up: a node as well (kubelet, containerd; needs root): make sandbox NODE=1",
    )
    parser.add_argument(
        "--once", action="store_true", help="demo: exit once every object is settled (for CI)"
    )
    parser.add_argument(
        "--watch-seconds",
        type=float,
        default=300.0,
        help="demo: how long to print status changes (with --once: how long to wait at most)",
    )
    args = parser.parse_args(argv)
    state_dir: Path = args.state_dir
    if args.command == "down":
        sandbox.down(state_dir)
        print(f"sandbox in {state_dir} stopped")
        left = nodehost.mounts_under(state_dir.resolve())
        if left:
            print(f"still mounted under {state_dir}: {left}", file=sys.stderr)
            return 1
        return 0
    if args.command == "env":
        env = state_dir / "env"
        if not env.exists():
            print("sandbox is not running: make sandbox", file=sys.stderr)
            return 1
        print(env.read_text(), end="")
        return 0
    started = time.monotonic()
    try:
        box = sandbox.up(state_dir, args.inventory, node=args.node)
    except node.NodeUnavailableError as err:
        print(f"no node on this machine: {err}", file=sys.stderr)
        return 1
    if args.command == "demo":
        print(f"sandbox up in {time.monotonic() - started:.1f}s ({state_dir})")
        return demo.run(box, once=args.once, seconds=args.watch_seconds)
    if args.command == "install":
        install.install(box)
        print(f"CRDs, namespace {install.NAMESPACE} and Secret {install.SECRET} are in place")
        return 0
    print(f"sandbox up in {time.monotonic() - started:.1f}s; source {state_dir / 'env'}:")
    for key, value in box.env().items():
        print(f"  {key}={value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
