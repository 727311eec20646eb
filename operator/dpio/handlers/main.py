"""`dpio-operator`: the container's entry point and `make run`'s, one code path.

Logs: `DPIO_LOG_FORMAT=json` for one JSON object per line (text by default), `DPIO_LOG_LEVEL`
(INFO by default; `--verbose` is DEBUG). Metrics: `DPIO_METRICS_PORT` (9090; 0 turns it off).
"""

from __future__ import annotations

import argparse

import kopf

# Importing the handler modules registers them with kopf (runtime.py imports the assignment's).
from dpio.handlers import lifecycle, policy  # noqa: F401
from dpio.observability import logging as logs


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="dpio-operator", description=__doc__)
    parser.add_argument("--liveness", default="http://0.0.0.0:8080/healthz")
    parser.add_argument("--standalone", action="store_true", help="no peering (one replica)")
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args(argv)
    try:
        logs.configure(verbose=args.verbose)
        lifecycle.metrics_port()  # a bad value stops us here, not inside kopf's startup
    except ValueError as err:
        parser.error(str(err))
    kopf.run(clusterwide=True, liveness_endpoint=args.liveness, standalone=args.standalone)


if __name__ == "__main__":
    main()
