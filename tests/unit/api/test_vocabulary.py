"""The compression dictionary is derived from the API: its field names, enum values and the
condition types and reasons, so what is added to the API is in it without a second list."""

from __future__ import annotations

import json

from dpio.api import conditions
from dpio.api.vocabulary import dictionary


def test_holds_the_api_words_once_within_zlibs_limit() -> None:
    words = dictionary().decode()
    assert len(dictionary()) <= 32 * 1024
    for field in ("observedGeneration", "lastTransitionTime", "powerPolicy", "rebootRequired"):
        assert f'"{field}":' in words
    for value in (conditions.AS_EXPECTED, conditions.VMOTION_COMPATIBLE, "WaitForPowerOff"):
        assert json.dumps(value) in words
    assert words.count('"observedGeneration":') == 1


def test_leaves_out_what_is_not_a_word_of_an_object() -> None:
    words = dictionary().decode()
    assert conditions.CONDITION_TYPE_PATTERN not in words
    assert "description" not in words  # the schemas' own keys are not in objects
    assert words.rfind('":') > words.rfind('"AsExpected"')  # field names come last
