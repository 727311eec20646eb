"""`make bench` / `python -m bench`: the benchmarks of the performance targets (docs/design.md,
"Performance targets") against the sandbox.

Each scenario starts its own control plane and simulators, runs the operator as a subprocess,
prints its tables and writes `<out>/<scenario>.json`. See bench/README.md for how to read them."""

from __future__ import annotations

import argparse
import importlib
import sys
import time
import traceback
from pathlib import Path

from bench import stage
from bench.context import Context
from bench.report import Result, Table, render, save

SCENARIOS = ("hosts", "vms", "steady", "drift", "scale", "together")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--scenario", choices=[*SCENARIOS, "all"], default="all")
    parser.add_argument(
        "--quick", action="store_true", help="small smoke sizes (minutes, not hours)"
    )
    parser.add_argument("--out", type=Path, default=Path(".bench"))
    parser.add_argument("--latency-ms", type=int, default=50, help="injected per SOAP request")
    parser.add_argument(
        "--timeout",
        type=float,
        default=None,
        help="seconds a convergence may take (default: 120 with --quick, else 900)",
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="run the operator under cProfile; top functions in <out>/profile-<scenario>-*.txt",
    )
    parser.add_argument(
        "--py-spy",
        action="store_true",
        help="sample the operator with py-spy (its Python CPU); "
        "<out>/state/<scenario>/py-spy-*.txt",
    )
    parser.add_argument(
        "--objects", type=int, help="object count for steady and together; scale runs only it"
    )
    args = parser.parse_args(argv)
    ctx = Context(
        out=args.out.resolve(),
        quick=args.quick,
        latency_ms=args.latency_ms,
        timeout=args.timeout or (120.0 if args.quick else 900.0),
        profile=args.profile,
        py_spy=args.py_spy,
        objects=args.objects,
    )
    names = SCENARIOS if args.scenario == "all" else (args.scenario,)
    failed = 0
    for name in names:
        result = _run(name, ctx)
        failed += not result.available and result.reason.startswith("error")
        print(render(result), flush=True)
        print(f"-> {save(result, ctx.out)}\n", flush=True)
    return 1 if failed else 0


def _run(name: str, ctx: Context) -> Result:
    print(f">> scenario {name}{' (quick)' if ctx.quick else ''}", file=sys.stderr, flush=True)
    started = time.monotonic()
    mark = len(stage.simulator_cpu)
    try:
        module = importlib.import_module(f"bench.scenarios.{name}")
        result: Result = module.run(ctx)
    except Exception as err:  # one broken scenario must not hide the others' figures
        traceback.print_exc()
        result = Result(name, available=False, reason=f"error: {type(err).__name__}: {err}")
    result.figures.setdefault("scenario_seconds", round(time.monotonic() - started, 1))
    add_simulator_cpu(result, stage.simulator_cpu[mark:])
    return result


def add_simulator_cpu(result: Result, sims: list[stage.SimulatorCPU]) -> None:
    """The simulators' own CPU next to the operator's figures: which side was slow."""
    if not sims:
        return
    table = Table(
        "simulator CPU (dpio-vcsim process, /proc/<pid>/stat)",
        ["simulator", "load CPU s", "scenario CPU s", "peak RSS MiB"],
    )
    for s in sims:
        table.add(
            s.name, round(s.load_seconds, 2), _rounded(s.scenario_seconds), _rounded(s.peak_rss_mib)
        )
    result.tables.append(table)
    result.figures["simulator_cpu"] = {
        s.name: {
            "load_cpu_seconds": round(s.load_seconds, 2),
            "scenario_cpu_seconds": _rounded(s.scenario_seconds),
            "peak_rss_mib": _rounded(s.peak_rss_mib),
        }
        for s in sims
    }


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


if __name__ == "__main__":
    sys.exit(main())
