r"""namePattern: searched by RE2 in host and device names, in time linear in the name.

What the docs promise (docs/api.md, docs/upgrade.md): unanchored search, `^`/`$` anchor, case
matters unless `(?i)`; what RE2 can't compile (backreferences, lookaround, ...) stalls the policy
with InvalidSpec, naming the field; `^(\w+\s?)*$`, which Python's `re` needs minutes for on a
32-character name, returns at once.
"""

from __future__ import annotations

import pytest
from tests.unit.api.samples import PLANNER_ONLY, Bad
from tests.unit.planner.builders import GPU, NOW, T4, dev, gpu_host, host, info, spec

from dpio.api.conditions import INVALID_SPEC
from dpio.api.patterns import PatternError, compile_pattern
from dpio.api.policy import DeviceSelector, HostPassthroughPolicySpec, HostSelector
from dpio.planner.host.deletion import plan_deletion
from dpio.planner.host.plan import plan_policy
from dpio.planner.host.rules import HostMatcher
from dpio.planner.observed import ObservedInventory
from dpio.planner.selection import InvalidSpecError, compile_device_selector, select_hosts

REDOS = r"^(\w+\s?)*$"
# Exponential for a backtracking engine: every split of the word is tried before "!" fails it.
# No timing assertion: RE2 answers in milliseconds, completing is the proof. `re`'s matching
# loop holds the GIL and looks at no signal, so a regression to it trips this timeout only when
# the 32-character search returns (minutes), and never ends on 100 000 characters.
linear_time = pytest.mark.timeout(60)


def selected_hosts(pattern: str, *names: str) -> list[str]:
    inventory = ObservedInventory(hosts=tuple(host(n) for n in names))
    chosen = select_hosts(HostSelector(name_pattern=pattern), inventory).hosts
    by_matcher = HostMatcher.from_selector(HostSelector(name_pattern=pattern))
    # The conflict rule asks the same question one host at a time: same answer.
    assert {h.name for h in inventory.hosts if by_matcher.selects(h, inventory)} == {
        h.name for h in chosen
    }
    return [h.name for h in chosen]  # ordered by name


def device_matches(pattern: str, device_name: str) -> bool:
    matcher = compile_device_selector(DeviceSelector(name_pattern=pattern), 0)
    return matcher.matches(dev(GPU, (0x10DE, 0x1EB8, device_name)))


@linear_time
@pytest.mark.parametrize(
    ("name", "matches"),
    [
        pytest.param("esx" + "a" * 28 + "!", False, id="32-chars-no-match"),
        pytest.param("esx gpu node " + "a" * 19, True, id="32-chars-match"),
        pytest.param("a" * 99_999 + "!", False, id="100000-chars-no-match"),
        pytest.param("word " * 19_999 + "last!", False, id="100000-chars-words-no-match"),
        pytest.param("word " * 20_000, True, id="100000-chars-match"),
    ],
)
def test_the_redos_pattern_returns_the_right_answer_at_once(name: str, matches: bool) -> None:
    assert len(name) in (32, 100_000)
    assert compile_pattern(REDOS).search(name) is matches
    assert selected_hosts(REDOS, name, "other!") == ([name] if matches else [])
    assert device_matches(REDOS, name) is matches


@linear_time
def test_a_policy_with_the_redos_pattern_plans_like_any_other() -> None:
    slow_for_re = "esx" + "a" * 28 + "!"
    hosts = (gpu_host("esx01"), gpu_host(slow_for_re))
    plan = plan_policy(
        name="p",
        creation_timestamp=NOW,
        spec=spec(hosts={"namePattern": REDOS}),
        inventory=ObservedInventory(hosts=hosts),
        now=NOW,
    )

    assert plan.stalled is None
    assert [h.host.name for h in plan.hosts] == ["esx01"]
    assert [u.host for u in plan.updates] == ["esx01"]


@pytest.mark.parametrize(
    ("pattern", "names", "selected"),
    [
        # Searched, not matched whole: a pattern may match anywhere in the name.
        ("gpu", ["esx-gpu-01", "gpu-esx-02", "esx03"], ["esx-gpu-01", "gpu-esx-02"]),
        # The docs' host example: "^esx-gpu-" matches names that start with esx-gpu-.
        ("^esx-gpu-", ["esx-gpu-01", "lab-esx-gpu-02", "esx-gpu"], ["esx-gpu-01"]),
        ("lab[.]local$", ["a.lab.local", "a.lab.local.b", "b.lab-local"], ["a.lab.local"]),
        ("^esx0[23]$", ["esx01", "esx02", "esx03", "esx023"], ["esx02", "esx03"]),
        # Case matters, unless the pattern says (?i).
        ("ESX", ["esx01", "ESX02"], ["ESX02"]),
        ("(?i)esx", ["esx01", "ESX02", "host"], ["ESX02", "esx01"]),
        ("a|b", ["xa", "xb", "xc"], ["xa", "xb"]),
    ],
)
def test_host_name_pattern_semantics(pattern: str, names: list[str], selected: list[str]) -> None:
    assert selected_hosts(pattern, *names) == selected  # ordered by host name


@pytest.mark.parametrize(
    ("pattern", "device_name", "matches"),
    [
        # The docs' device example and the README's / examples' patterns.
        ("^Tesla T4$", "Tesla T4", True),
        ("^Tesla T4$", "Tesla T4 16GB", False),
        ("^Tesla T4$", "NVIDIA Tesla T4", False),
        ("Tesla T4", "TU104GL [Tesla T4]", True),
        (r"^TU104GL \[Tesla T4\]$", "TU104GL [Tesla T4]", True),
        ("tesla t4", "Tesla T4", False),
        ("(?i)tesla t4", "Tesla T4", True),
        ("A100|X710", "Ethernet Controller X710", True),
        # Where RE2 differs from Python's re (docs/upgrade.md): \w is ASCII only; "{,n}" is
        # the literal text, not "0 to n times"; $ does not match before a trailing newline.
        (r"^\w+$", "Grafikkarte-für-KI", False),
        (r"^[\w-]+$", "Grafikkarte-fur-KI", True),
        (r"^\pL+$", "Grafikkartefür", True),
        ("^A{,3}$", "AA", False),
        ("^A{,3}$", "A{,3}", True),
        ("T4$", "Tesla T4\n", False),
    ],
)
def test_device_name_pattern_semantics(pattern: str, device_name: str, matches: bool) -> None:
    assert device_matches(pattern, device_name) is matches


@pytest.mark.parametrize(
    ("pattern", "reason"),
    [
        (r"(a)\1", r"invalid escape sequence: \1"),
        ("(?P<n>a)(?P=n)", "invalid perl operator: (?P"),
        ("esx(?=-gpu)", "invalid perl operator: (?="),
        ("esx(?!-lab)", "invalid perl operator: (?!"),
        ("(?<=esx-)gpu", "invalid perl operator: (?<"),
        ("(?<!lab-)esx", "invalid perl operator: (?<"),
        ("(?>esx)", "invalid perl operator: (?>"),
        ("esx-.*+", "bad repetition operator: *+"),
        (r"local\Z", r"invalid escape sequence: \Z"),
        ("(?x) esx - gpu", "invalid perl operator: (?x"),
        ("(?(1)a|b)", "invalid perl operator: (?("),
        ("esx-(gpu", "missing ): esx-(gpu"),
        ("a{1001}", "invalid repetition size: {1001}"),
    ],
)
def test_what_re2_cannot_compile_is_an_invalid_spec_naming_the_field(
    pattern: str, reason: str
) -> None:
    with pytest.raises(PatternError, match=r"^invalid |^bad |^missing ") as refused:
        compile_pattern(pattern)
    assert reason in str(refused.value)

    hosts = HostSelector(name_pattern=pattern)
    for compile_hosts in (
        HostMatcher.from_selector,
        lambda s: select_hosts(s, ObservedInventory()),
    ):
        with pytest.raises(InvalidSpecError) as invalid:
            compile_hosts(hosts)
        assert str(invalid.value).startswith("hosts.namePattern is not RE2 syntax: ")
        assert reason in str(invalid.value)
        assert "https://github.com/google/re2/wiki/Syntax" in str(invalid.value)

    with pytest.raises(InvalidSpecError, match=r"^devices\[3\]\.namePattern is not RE2 syntax: "):
        compile_device_selector(DeviceSelector(name_pattern=pattern), 3)


def observed() -> ObservedInventory:
    """The host and device the PLANNER_ONLY specs name, passthrough enabled: what a deletion
    with deletionPolicy Disable would turn off, had its patterns compiled."""
    device, passthru = dev(GPU, T4), info(GPU, enabled=True, active=True)
    return ObservedInventory(hosts=(host("esx01.lab.local", (device,), (passthru,)),))


@pytest.mark.parametrize("case", PLANNER_ONLY, ids=lambda case: case.id)
def test_a_policy_with_a_pattern_re2_refuses_is_stalled_and_changes_nothing(case: Bad) -> None:
    admitted = {**case.spec, "deletionPolicy": "Disable"}
    policy = HostPassthroughPolicySpec.model_validate(admitted)  # as the API server stored it

    plan = plan_policy(name="p", creation_timestamp=NOW, spec=policy, inventory=observed(), now=NOW)

    assert plan.stalled is not None
    assert plan.stalled.reason == INVALID_SPEC
    assert plan.stalled.message.startswith(case.message)
    assert (plan.updates, plan.reboot_actions, plan.hosts) == ((), (), ())
    # Deleted, it disables nothing either: a spec that can't be compiled selected nothing.
    assert plan_deletion(name="p", spec=policy, inventory=observed()) == ()
