"""`dpio-operator`: the container's entry point and `make run`'s, one code path."""

from __future__ import annotations

import argparse
import logging

import kopf

# Importing the handler modules registers them with kopf.
from dpio.handlers import lifecycle, policy  # noqa: F401


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="dpio-operator", description=__doc__)
    parser.add_argument("--liveness", default="http://0.0.0.0:8080/healthz")
    parser.add_argument("--standalone", action="store_true", help="no peering (one replica)")
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )
    kopf.run(clusterwide=True, liveness_endpoint=args.liveness, standalone=args.standalone)


if __name__ == "__main__":
    main()
