r"""`namePattern`: an RE2 regular expression, searched for in a name.

A pattern is user input matched on every reconcile, so it runs on RE2, whose matching time is
linear in the length of the name whatever the pattern (github.com/google/re2/wiki/WhyRE2).
Python's backtracking `re` needs time exponential in the name's length to find that
`^(\w+\s?)*$` does not match "aaa...a!": 0.7 s at 24 characters, about twice that for each one
more (minutes at 32), while the event loop, every reconcile and the liveness probe wait.
The price is what only backtracking can do: backreferences, lookaround, atomic groups
(github.com/google/re2/wiki/Syntax); RE2 refuses those when compiling, and `PatternError` says so.

The only module that imports `re2`: it has no type annotations, so its `Any` stays here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import re2

SYNTAX_URL = "https://github.com/google/re2/wiki/Syntax"


def _options() -> Any:
    options = re2.Options()
    # A refused pattern is reported in the policy's status; RE2 would also print it on stderr,
    # outside the operator's structured log, on every reconcile of that policy.
    options.log_errors = False
    options.never_capture = True  # only "is there a match" is asked: no groups to keep
    return options


_OPTIONS = _options()


class PatternError(ValueError):
    """The text is not RE2 syntax; the message is RE2's reason, e.g. "missing ): (a"."""


@dataclass(frozen=True, slots=True)
class Pattern:
    """A compiled namePattern: equal and hashed by its text, like `re.Pattern`."""

    text: str
    _regexp: Any = field(repr=False, compare=False)

    def search(self, name: str) -> bool:
        """Does the pattern match anywhere in `name`? Unanchored: `^` and `$` anchor it."""
        return self._regexp.search(name) is not None


def compile_pattern(text: str) -> Pattern:
    """`text` compiled by RE2 (case-sensitive; `(?i)` for not); PatternError if RE2 refuses it."""
    try:
        regexp = re2.compile(text, _OPTIONS)
    except re2.error as err:
        raise PatternError(_reason(err)) from err
    return Pattern(text, regexp)


def _reason(err: Exception) -> str:
    # The binding passes RE2's own message through as bytes (RE2::error()).
    reason = err.args[0] if err.args else "refused"
    return reason.decode("utf-8", "replace") if isinstance(reason, bytes) else str(reason)
