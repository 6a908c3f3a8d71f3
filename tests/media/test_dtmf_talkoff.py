"""Talk-off and talk-down of the in-band DTMF detector on the generated corpora.

The corpora are built from offline material (Debian prompt and music-on-hold packages, espeak-ng,
sox) into a cache directory on first use; see ``benchmarks/dtmf_corpus.py``.
"""

from __future__ import annotations

import dtmf_corpus as corpus
import pytest
from dtmf_receivers import voxflow_digits

pytestmark = pytest.mark.slow


def test_talkoff_corpus_yields_no_false_digits() -> None:
    false_digits: list[tuple[str, str]] = []
    minutes: dict[str, float] = {}
    for clip in corpus.talkoff_clips():
        minutes[clip.category] = minutes.get(clip.category, 0.0) + clip.minutes
        heard = voxflow_digits(clip.samples)
        if heard:
            false_digits.append((f"{clip.category}/{clip.name}", heard))

    assert false_digits == []
    # The corpus really holds hours of every kind of material, not an empty shell.
    assert set(minutes) == {"speech", "music", "tts", "speech-variant", "tones", "chords"}
    assert minutes["speech"] > 4 * 24  # ≈ 25 min of recorded prompts at five gain/codec copies
    assert minutes["music"] > 4 * 18
    assert sum(minutes.values()) > 6 * 60


@pytest.mark.parametrize("speech_dbm0", [-40.0, -30.0, -25.0])
def test_every_key_is_heard_through_speech_15_db_or_more_below_the_tones(
    speech_dbm0: float,
) -> None:
    clip = corpus.talkdown_clip(speech_dbm0)
    assert corpus.TALKDOWN_KEY_DBM0 - speech_dbm0 >= 15.0

    assert voxflow_digits(clip.samples) == clip.expected


@pytest.mark.parametrize("speech_dbm0", [-20.0, -15.0])
def test_loud_speech_over_keys_may_mask_keys_but_never_invents_them(speech_dbm0: float) -> None:
    clip = corpus.talkdown_clip(speech_dbm0)

    heard = voxflow_digits(clip.samples)

    found = corpus.matched_keys(clip.expected, heard)
    assert found == len(heard), f"keys heard that were not pressed: {heard!r}"
    assert found >= len(clip.expected) // 2
