"""The repository stands on its own: no pointer to a design document outside it, and every link
into docs/design.md names a heading that exists.

Links into docs/design.md come in two forms: `docs/design.md#tenancy` (also `design.md#...` from
docs/, and `](#...)` inside the page itself), with GitHub's anchor rules; and, in code comments,
`docs/design.md, "Tenancy"`, with the heading's exact text.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DESIGN = ROOT / "docs" / "design.md"

# Spelled in pieces so that this file does not match itself.
_OUTSIDE = re.compile(
    "|".join(re.escape(s) for s in ("DESIGN" + ".md", "DESIGN" + " §", ".." + "/shared/"))
)
_ANCHOR_LINK = re.compile(r"design\.md#([\w-]+)")
_LOCAL_LINK = re.compile(r"\]\(#([\w-]+)\)")
# `docs/design.md, "Tenancy"`, the title possibly on the next comment line.
_TITLE_LINK = re.compile(r'docs/design\.md,\s*(?:(?:#:?|//|--)\s*)?"([^"]+)"')
_HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")


def github_anchor(title: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = title.replace("`", "").strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def headings(markdown: str) -> list[str]:
    """Heading texts, outside fenced code blocks, in order."""
    found, fenced = [], False
    for line in markdown.splitlines():
        if line.lstrip().startswith(("```", "~~~")):
            fenced = not fenced
            continue
        match = None if fenced else _HEADING.match(line)
        if match is not None:
            found.append(match.group(2))
    return found


def anchors(titles: list[str]) -> set[str]:
    """GitHub's anchors, with -1, -2 ... for repeated headings."""
    seen: dict[str, int] = {}
    result = set()
    for title in titles:
        anchor = github_anchor(title)
        count = seen.get(anchor, 0)
        seen[anchor] = count + 1
        result.add(anchor if count == 0 else f"{anchor}-{count}")
    return result


def tracked_text_files() -> Iterator[tuple[str, str]]:
    """(path, text) of every file git tracks here that is text (no NUL byte)."""
    git = shutil.which("git")
    if git is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    listed = subprocess.run(
        [git, "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        path = ROOT / name
        if not path.is_file():
            continue  # deleted in the work tree, not yet in the index
        data = path.read_bytes()
        if b"\0" not in data:
            yield name, data.decode("utf-8", errors="replace")


def test_github_anchor_rules() -> None:
    assert github_anchor("VM side: device changes") == "vm-side-device-changes"
    assert github_anchor("VM side: large-BAR devices") == "vm-side-large-bar-devices"
    assert github_anchor("Reconcile: `HostPassthroughPolicy`") == "reconcile-hostpassthroughpolicy"
    assert anchors(["Notes", "Notes"]) == {"notes", "notes-1"}


def test_no_file_points_outside_the_repository() -> None:
    found = [
        f"{name}:{number}: {line.strip()}"
        for name, text in tracked_text_files()
        for number, line in enumerate(text.splitlines(), 1)
        if _OUTSIDE.search(line)
    ]
    assert found == [], "replace with a link into docs/design.md:\n" + "\n".join(found)


def test_every_link_into_the_design_page_names_a_heading() -> None:
    titles = headings(DESIGN.read_text())
    known = anchors(titles)
    broken = []
    for name, text in tracked_text_files():
        links = _ANCHOR_LINK.findall(text)
        if name == "docs/design.md":
            links += _LOCAL_LINK.findall(text)
        broken += [f"{name}: #{a}" for a in links if a not in known]
        broken += [f'{name}: "{t}"' for t in _TITLE_LINK.findall(text) if t not in titles]
    assert broken == [], "no such heading in docs/design.md:\n" + "\n".join(broken)
