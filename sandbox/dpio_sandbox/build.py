"""Build Go binaries into a cache outside git, once per version and source, showing progress."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from pathlib import Path

from dpio_sandbox.paths import cache_root

# Files whose content decides what a module builds. Wrapper modules hold only go.mod/go.sum;
# our own modules (the vSphere simulator) change often, so their sources count too.
_KEY_SUFFIXES = (".go", ".yaml", ".yml", ".mod", ".sum")


class BuildError(RuntimeError):
    """``go`` failed; the message carries the tail of its output."""


def build_go(
    name: str,
    module_dir: Path,
    packages: Mapping[str, str],
    ldflags: str,
    version: str,
    *,
    toolchain: str = "local",
) -> Path:
    """Build ``packages`` ({binary name: Go package}) of ``module_dir``; return the bin dir.

    ``toolchain`` is the default GOTOOLCHAIN ("auto" for a module whose go.mod names a Go newer
    than the machine's: the go command fetches that toolchain through the module proxy); a
    GOTOOLCHAIN in the environment wins.

    The result is cached under ``<cache>/bin/<name>-<version>-<key>`` where the key hashes the
    module's sources, ldflags and the Go version; a cached dir is returned without running ``go``.
    A file lock serializes concurrent builds (pytest and make), and the dir appears atomically.
    """
    bin_root = cache_root() / "bin"
    bin_root.mkdir(parents=True, exist_ok=True)
    key = cache_key(module_dir, ldflags, sorted(packages.items()), toolchain=toolchain)
    final = bin_root / f"{name}-{version}-{key}"
    if _complete(final, packages):
        return final
    with _locked(bin_root / f".{name}.lock"):
        if _complete(final, packages):  # another process built it while we waited
            return final
        label = f"{name} {version}"
        env = _go_env(toolchain)
        total = _resolve(label, module_dir, list(packages.values()), env)
        with tempfile.TemporaryDirectory(prefix=f".{name}-", dir=bin_root) as tmp:
            _go_build(
                label, module_dir, packages, ldflags=ldflags, env=env, total=total, out=Path(tmp)
            )
            Path(tmp).chmod(0o755)  # mkdtemp makes it private; the binaries are not secret
            os.rename(tmp, final)
        _prune(bin_root, name, keep=final)
    return final


def module_release(module_dir: Path, module: str, *, toolchain: str = "local") -> tuple[str, str]:
    """(version, release time) of a module required by ``module_dir``, as ``go`` resolves it."""
    env = _go_env(toolchain)
    info = json.loads(_run_go(["list", "-m", "-json", module], module_dir, env))
    return str(info["Version"]), str(info.get("Time", ""))


def cache_key(module_dir: Path, *extra: object, toolchain: str = "local") -> str:
    """Hash of the module's Go sources, go.mod/go.sum, YAML files, ``extra`` and the Go version."""
    digest = hashlib.sha256(repr(extra).encode())
    digest.update(_run_go(["env", "GOVERSION"], module_dir, _go_env(toolchain)).encode())
    for path in sorted(module_dir.rglob("*")):
        rel = path.relative_to(module_dir)
        if path.is_file() and path.suffix in _KEY_SUFFIXES and not _ignored(rel):
            digest.update(str(rel).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:12]


def _ignored(rel: Path) -> bool:
    # Tests and local build output do not change the binary.
    return rel.name.endswith("_test.go") or rel.parts[0] in {"bin", "testdata"}


def _complete(bin_dir: Path, packages: Mapping[str, str]) -> bool:
    return all((bin_dir / binary).is_file() for binary in packages)


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _go_env(toolchain: str = "local") -> dict[str, str]:
    # Static binaries with the machine's toolchain, unless the caller or the module allows another
    # one (.ci/run sets GOTOOLCHAIN=auto so an old distribution Go can fetch the one go.mod names).
    return {
        **os.environ,
        "CGO_ENABLED": "0",
        "GOTOOLCHAIN": os.environ.get("GOTOOLCHAIN", toolchain),
    }


def _run_go(args: list[str], module_dir: Path, env: Mapping[str, str]) -> str:
    proc = subprocess.run(
        ["go", *args], cwd=module_dir, env=env, capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        tail = "\n".join(proc.stderr.splitlines()[-30:])
        raise BuildError(f"go {' '.join(args[:2])} failed in {module_dir}:\n{tail}")
    return proc.stdout


def _resolve(label: str, module_dir: Path, packages: list[str], env: Mapping[str, str]) -> int:
    """Download the modules the packages need and count their dependency packages."""
    _say(f"resolving modules for {label} (downloads what the Go module cache lacks)")
    deps = _run_go(["list", "-deps", "-trimpath", *packages], module_dir, env)
    return len(deps.split())


def _go_build(
    label: str,
    module_dir: Path,
    packages: Mapping[str, str],
    *,
    ldflags: str,
    env: Mapping[str, str],
    total: int,
    out: Path,
) -> None:
    # One `go build` for all binaries: shared packages compile once and links run in parallel.
    args = ["build", "-v", "-trimpath", f"-ldflags={ldflags}", "-o", f"{out}/"]
    _stream(label, [*args, *packages.values()], module_dir, env, total)
    for binary, package in packages.items():
        (out / _go_binary_name(package)).rename(out / binary)


def _go_binary_name(package: str) -> str:
    """The name ``go build -o dir/`` gives: the last path element, skipping a ``/vN`` suffix."""
    parts = package.split("/")
    last = parts[-1]
    if len(parts) > 1 and last[:1] == "v" and last[1:].isdigit():
        return parts[-2]
    return last


def _stream(
    label: str, args: list[str], module_dir: Path, env: Mapping[str, str], total: int
) -> None:
    """Run ``go build -v``, turning its one-package-per-line output into a progress line."""
    progress = _Progress(label, total)
    tail: list[str] = []
    with subprocess.Popen(
        ["go", *args],
        cwd=module_dir,
        env=env,
        text=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    ) as proc:
        assert proc.stderr is not None
        for line in proc.stderr:
            tail = [*tail[-29:], line.rstrip()]
            progress.advance()
        returncode = proc.wait()
    progress.finish()
    if returncode != 0:
        raise BuildError(f"go {' '.join(args)} failed:\n" + "\n".join(tail))


class _Progress:
    """``building X: n/total packages (elapsed)``: redrawn on a TTY, one line per 10% otherwise."""

    def __init__(self, label: str, total: int) -> None:
        self._label, self._total, self._done = label, max(total, 1), 0
        self._start = self._drawn = time.monotonic()
        self._tty, self._decile = sys.stderr.isatty(), 0

    def advance(self) -> None:
        self._done += 1
        now = time.monotonic()
        decile = min(self._done * 10 // self._total, 9)
        if self._tty and now - self._drawn > 0.25:
            self._drawn = now
            print(f"\r{self._line()}", end="", file=sys.stderr, flush=True)
        elif not self._tty and decile > self._decile:
            self._decile = decile
            _say(self._line())

    def finish(self) -> None:
        print(
            f"\r{self._line(final=True)}" if self._tty else self._line(final=True),
            file=sys.stderr,
            flush=True,
        )

    def _line(self, final: bool = False) -> str:
        elapsed = int(time.monotonic() - self._start)
        # Cached packages are not printed by `go build -v`, so the count can stop short of total.
        done = self._total if final else min(self._done, self._total)
        took = f"{elapsed // 60}m{elapsed % 60:02d}s"
        return f"building {self._label}: {done}/{self._total} packages ({took})"


def _prune(bin_root: Path, name: str, keep: Path) -> None:
    """Drop older builds of ``name``: each Kubernetes build weighs ~200 MB."""
    for old in bin_root.glob(f"{name}-*"):
        if old != keep and old.is_dir():
            shutil.rmtree(old, ignore_errors=True)


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)
