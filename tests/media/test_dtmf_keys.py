import pytest

from voxflow.media.dtmf import ALL_KEYS, DIGITS, EVENT_CODES, KEY_BY_EVENT_CODE, tone_pair


def test_every_key_has_a_tone_pair_and_an_event_code() -> None:
    assert len(ALL_KEYS) == 16
    assert DIGITS < ALL_KEYS
    for key in ALL_KEYS:
        row, column = tone_pair(key)
        assert row < 1000 < column
        assert KEY_BY_EVENT_CODE[EVENT_CODES[key]] == key


def test_keypad_layout_matches_rfc4733_codes() -> None:
    assert tone_pair("1") == (697.0, 1209.0)
    assert tone_pair("0") == (941.0, 1336.0)
    assert tone_pair("#") == (941.0, 1477.0)
    assert EVENT_CODES["*"] == 10 and EVENT_CODES["#"] == 11 and EVENT_CODES["D"] == 15


@pytest.mark.parametrize("bad", ["E", "12", "", "x"])
def test_unknown_keys_are_rejected(bad: str) -> None:
    with pytest.raises(ValueError, match="not a DTMF key"):
        tone_pair(bad)
