"""The silero VAD run for real: the shipped ONNX model on speech, silence, noise, key tones and
hold music at 8 kHz through G.711, plus its errors and the detector factory."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from voxflow.errors import MediaError, VadNotAvailableError
from voxflow.media.audio import decode_wav, frames, resample
from voxflow.media.dtmf.generator import generate_sequence
from voxflow.media.g711 import ulaw_decode, ulaw_encode
from voxflow.media.vad import (
    BatchVad,
    SileroVad,
    VoiceActivityDetector,
    WebRtcVad,
    find_silero_model,
    frame_level_dbfs,
    make_vad,
)
from voxflow.speech.espeak import EspeakProvider
from voxflow.speech.tts import SynthesisRequest

MOH_DIR = Path("/usr/share/asterisk/moh")
SENTENCES = ("I want to talk to sales please", "cancel my order", "connect me to an agent")
VOICES = ("en-us", "en-us+f3", "en-us+m3")


def line(samples: np.ndarray) -> np.ndarray:
    """What arrives from the phone line: a G.711 mu-law round trip."""
    return ulaw_decode(ulaw_encode(samples))


def verdicts(detector: VoiceActivityDetector, signal: np.ndarray) -> np.ndarray:
    return np.array([detector.is_speech(f) for f in frames(signal)])


def noise(level_dbfs: float, colour: str, seconds: float = 3.0) -> np.ndarray:
    rng = np.random.default_rng(11)
    n = int(8000 * seconds)
    white = rng.normal(0.0, 1.0, n)
    if colour == "pink":  # 1/f power: scale the spectrum by 1/sqrt(f)
        spectrum = np.fft.rfft(white)
        spectrum /= np.sqrt(np.maximum(np.arange(spectrum.size), 1))
        white = np.fft.irfft(spectrum, n)
    scaled = white / np.sqrt(np.mean(white**2)) * 32768 * 10 ** (level_dbfs / 20)
    return line(np.clip(scaled, -32768, 32767).astype(np.int16))


@pytest.fixture(scope="module")
def speech() -> np.ndarray:
    """Nine espeak utterances (three voices) back to back, as heard over the line."""
    provider = EspeakProvider()
    parts = [
        asyncio.run(provider.synthesize(SynthesisRequest.from_text(text, voice=voice))).samples
        for voice in VOICES
        for text in SENTENCES
    ]
    return line(np.concatenate(parts))


@pytest.fixture(scope="module")
def model() -> Path:
    path = find_silero_model()
    assert path is not None, "the silero-vad package with its ONNX model is installed for tests"
    return path


def test_shipped_model_has_the_interface_the_detector_feeds(model: Path) -> None:
    import onnxruntime

    session = onnxruntime.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    inputs = {i.name: (i.shape, i.type) for i in session.get_inputs()}
    assert inputs["input"][1] == "tensor(float)"
    assert len(inputs["input"][0]) == 2
    assert inputs["state"] == ([2, None, 128], "tensor(float)")
    assert inputs["sr"] == ([], "tensor(int64)")
    assert [o.name for o in session.get_outputs()] == ["output", "stateN"]


def test_streamed_frames_give_the_reference_windowing(model: Path, speech: np.ndarray) -> None:
    """Feeding 160-sample frames yields, window by window, what the reference scheme gives:
    256-sample windows, each preceded by the previous window's last 32 samples."""
    import onnxruntime

    session = onnxruntime.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    signal = speech[: 160 * 200]
    audio = signal.astype(np.float32) / 32768
    state = np.zeros((2, 1, 128), np.float32)
    context = np.zeros(32, np.float32)
    reference = []
    for start in range(0, audio.size - 255, 256):
        window = audio[start : start + 256]
        x = np.concatenate([context, window])[None, :]
        out, state = session.run(
            None, {"input": x, "state": state, "sr": np.array(8000, np.int64)}
        )
        context = window[-32:]
        reference.append(float(out[0, 0]))

    detector = SileroVad()
    streamed = []
    fed = 0
    for frame in frames(signal):
        detector.is_speech(frame)
        fed += 160
        if fed // 256 > len(streamed):  # this frame completed a window
            streamed.append(detector.probability)
    assert len(streamed) == len(reference)
    np.testing.assert_allclose(streamed, reference, rtol=1e-4, atol=1e-5)
    assert max(reference) > 0.9  # it is speech, so the model is really being fed audio


def test_most_speech_frames_are_speech(speech: np.ndarray) -> None:
    voiced = frame_level_dbfs(frames(speech)) > -40  # the voiced core, not espeak's pauses
    found = verdicts(SileroVad(), speech)
    assert found[voiced].mean() > 0.85  # measured 0.95 (it lags up to one 32 ms window)


def test_silence_is_not_speech() -> None:
    assert not verdicts(SileroVad(), np.zeros(8000 * 3, np.int16)).any()


@pytest.mark.parametrize("colour", ["white", "pink"])
@pytest.mark.parametrize("level", [-40.0, -30.0, -20.0, -10.0])
def test_noise_is_not_speech(colour: str, level: float) -> None:
    # measured: no frame at all at any of these levels; webrtcvad mode 2 flags white noise
    # from -30 dBFS and pink from -20 dBFS as speech nearly throughout
    assert verdicts(SileroVad(), noise(level, colour)).mean() < 0.05


def test_key_tones_are_not_speech() -> None:
    tones = generate_sequence("0123456789*#ABCD", on_ms=100, off_ms=100)
    assert verdicts(SileroVad(), tones).mean() < 0.05  # measured 0; webrtcvad says 0.9


def test_hold_music_is_mostly_not_speech() -> None:
    tracks = sorted(MOH_DIR.glob("*.wav"))
    assert tracks, f"Debian's asterisk-moh-opsound-wav puts its music in {MOH_DIR}"
    for track in tracks:
        samples, rate = decode_wav(track.read_bytes())
        music = line(resample(samples, rate, 8000)[: 8000 * 20])
        share = verdicts(SileroVad(), music).mean()
        assert share < 0.1, f"{track.name}: {share:.0%} of frames taken for speech"
        # measured at most 1 % per track; webrtcvad takes 87-97 % of them


def test_reset_forgets_the_call(speech: np.ndarray) -> None:
    signal = speech[: 160 * 150]
    fresh = SileroVad()
    first = []
    for frame in frames(signal):
        fresh.is_speech(frame)
        first.append(fresh.probability)
    assert max(first) > 0.9
    fresh.reset()
    assert fresh.probability == 0.0
    assert not fresh.is_speech(np.zeros(160, np.int16))
    fresh.reset()
    again = []
    for frame in frames(signal):
        fresh.is_speech(frame)
        again.append(fresh.probability)
    np.testing.assert_allclose(again, first, rtol=1e-5, atol=1e-6)


def test_detectors_share_the_model_but_not_the_state(speech: np.ndarray) -> None:
    talk, hum = frames(speech)[:120], frames(noise(-20.0, "pink"))[:120]
    solo = []
    for rows in (talk, hum):
        detector = SileroVad()
        solo.append([(detector.is_speech(f), detector.probability) for f in rows])
    a, b = SileroVad(), SileroVad()
    assert a._session is b._session  # one model in memory however many calls
    interleaved: list[list[tuple[bool, float]]] = [[], []]
    for f, g in zip(talk, hum, strict=True):
        interleaved[0].append((a.is_speech(f), a.probability))
        interleaved[1].append((b.is_speech(g), b.probability))
    for mine, alone in zip(interleaved, solo, strict=True):
        assert [v for v, _ in mine] == [v for v, _ in alone]
        np.testing.assert_allclose([p for _, p in mine], [p for _, p in alone], atol=1e-6)


def test_batch_rows_keep_their_own_state(speech: np.ndarray) -> None:
    batch = BatchVad(SileroVad)
    talk = frames(speech)[:150]
    quiet = np.zeros(160, np.int16)
    out = np.array([batch.process(np.stack([quiet, f])) for f in talk])
    assert batch.channels == 2
    assert not out[:, 0].any()
    assert out[:, 1].mean() > 0.5


@pytest.mark.parametrize("threshold", [0.0, 1.0, -0.2, 1.5, float("nan"), True])
def test_bad_threshold_is_named(threshold: float) -> None:
    with pytest.raises(MediaError, match="threshold"):
        SileroVad(threshold=threshold)


def test_missing_model_file_says_so(tmp_path: Path) -> None:
    with pytest.raises(VadNotAvailableError, match="does not exist"):
        SileroVad(model_path=tmp_path / "silero_vad.onnx")


def test_a_file_that_is_not_a_model_is_refused(tmp_path: Path) -> None:
    bogus = tmp_path / "silero_vad.onnx"
    bogus.write_bytes(b"not a model at all")
    with pytest.raises(MediaError, match="not a usable ONNX model"):
        SileroVad(model_path=bogus)


def test_other_silero_variants_are_refused(model: Path) -> None:
    with pytest.raises(MediaError, match="16 kHz"):
        SileroVad(model_path=model.parent / "silero_vad_16k_op15.onnx")
    # the half-precision export has no sample-rate input: not the interface this feeds
    with pytest.raises(MediaError, match="not a silero v5/v6 VAD model"):
        SileroVad(model_path=model.parent / "silero_vad_half.onnx")


def test_bad_frames_are_named() -> None:
    detector = SileroVad()
    with pytest.raises(MediaError, match="160 int16"):
        detector.is_speech(np.zeros(100, np.int16))
    with pytest.raises(MediaError, match="160 int16"):
        detector.is_speech(np.zeros(160, np.float32))  # type: ignore[arg-type]


def test_without_onnxruntime_it_says_what_to_install() -> None:
    """A Python where onnxruntime cannot be imported (the import is blocked in sys.modules)."""
    script = (
        "import sys\n"
        "sys.modules['onnxruntime'] = None\n"
        "from voxflow.errors import ConfigError, VadNotAvailableError\n"
        "from voxflow.media.vad import SileroVad\n"
        "try:\n"
        "    SileroVad()\n"
        "except VadNotAvailableError as exc:\n"
        "    assert isinstance(exc, ImportError) and isinstance(exc, ConfigError)\n"
        "    print(exc)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=120
    )
    assert "onnxruntime is not installed" in done.stdout
    assert "voxflow[silero]" in done.stdout


def test_make_vad_builds_either_detector_by_name() -> None:
    webrtc = make_vad("webrtc", mode=3)
    assert isinstance(webrtc, WebRtcVad)
    assert webrtc.mode == 3
    silero = make_vad(" Silero ", threshold=0.6)
    assert isinstance(silero, SileroVad)
    assert silero.threshold == 0.6
    assert isinstance(make_vad("webrtc"), VoiceActivityDetector)


def test_make_vad_names_what_is_wrong() -> None:
    with pytest.raises(MediaError, match="unknown VAD 'rnnoise'; choose one of webrtc, silero"):
        make_vad("rnnoise")
    with pytest.raises(MediaError, match="bad options for the webrtc VAD"):
        make_vad("webrtc", threshold=0.5)
    with pytest.raises(MediaError, match="mode"):
        make_vad("webrtc", mode=7)
    with pytest.raises(VadNotAvailableError):
        make_vad("silero", model_path="/nonexistent/silero_vad.onnx")
