"""WAV decoding across formats written by two independent writers (stdlib ``wave`` and sox),
resampling with a tone's frequency preserved, framing, and bad input."""

from __future__ import annotations

import io
import struct
import subprocess
import wave
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from voxflow.errors import MediaError
from voxflow.media.audio import (
    Resampler,
    WavLimits,
    decode_wav,
    decode_wav_at,
    encode_wav,
    frames,
    resample,
    silence,
)

TONE_HZ = 440.0


def tone(rate: int, seconds: float = 0.5, amplitude: float = 0.5) -> npt.NDArray[np.float64]:
    t = np.arange(int(rate * seconds)) / rate
    return amplitude * np.sin(2 * np.pi * TONE_HZ * t)


def peak_hz(samples: npt.NDArray[np.int16], rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(samples.astype(np.float64) * np.hanning(samples.size)))
    return float(np.argmax(spectrum) * rate / samples.size)


def stdlib_wav(rate: int, channels: int, sampwidth: int) -> bytes:
    signal = tone(rate)
    if sampwidth == 1:
        pcm = np.round(signal * 127 + 128).astype(np.uint8)
    else:
        full_scale = 2 ** (8 * sampwidth - 1) - 1
        ints = np.round(signal * full_scale).astype(np.int64)
        # Little-endian: the low ``sampwidth`` bytes of each int64 are the sample.
        pcm = ints.astype("<i8").view(np.uint8).reshape(-1, 8)[:, :sampwidth]
    frame = np.repeat(pcm.reshape(len(signal), -1), channels, axis=0)
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as writer:
        writer.setnchannels(channels)
        writer.setsampwidth(sampwidth)
        writer.setframerate(rate)
        writer.writeframes(frame.tobytes())
    return buffer.getvalue()


def sox_wav(tmp_path: Path, rate: int, channels: int, encoding: list[str]) -> bytes:
    out = tmp_path / "tone.wav"
    subprocess.run(
        [
            "sox",
            "-n",
            "-r",
            str(rate),
            "-c",
            str(channels),
            *encoding,
            str(out),
            "synth",
            "0.5",
            "sine",
            str(TONE_HZ),
            "vol",
            "0.5",
        ],
        check=True,
    )
    return out.read_bytes()


def assert_tone(samples: npt.NDArray[np.int16], rate: int, expected_rate: int) -> None:
    assert samples.dtype == np.int16
    assert rate == expected_rate
    assert samples.size == expected_rate // 2
    assert abs(peak_hz(samples, rate) - TONE_HZ) < 4
    assert 0.3 * 32767 < np.max(np.abs(samples.astype(np.int32))) < 0.6 * 32767


@pytest.mark.parametrize("sampwidth", [1, 2, 3, 4])
@pytest.mark.parametrize("channels", [1, 2])
@pytest.mark.parametrize("rate", [8000, 16000, 22050, 44100])
def test_stdlib_pcm_matrix(sampwidth: int, channels: int, rate: int) -> None:
    samples, got_rate = decode_wav(stdlib_wav(rate, channels, sampwidth))
    assert_tone(samples, got_rate, rate)


SOX_ENCODINGS = {
    "pcm8": ["-e", "unsigned-integer", "-b", "8"],
    "pcm16": ["-e", "signed-integer", "-b", "16"],
    "pcm24": ["-e", "signed-integer", "-b", "24"],
    "pcm32": ["-e", "signed-integer", "-b", "32"],
    "float32": ["-e", "floating-point", "-b", "32"],
    "float64": ["-e", "floating-point", "-b", "64"],
    "ulaw": ["-e", "u-law"],
    "alaw": ["-e", "a-law"],
}


@pytest.mark.parametrize("encoding", SOX_ENCODINGS)
@pytest.mark.parametrize("channels", [1, 2])
def test_sox_format_matrix(tmp_path: Path, encoding: str, channels: int) -> None:
    samples, rate = decode_wav(sox_wav(tmp_path, 22050, channels, SOX_ENCODINGS[encoding]))
    assert_tone(samples, rate, 22050)


def test_sox_writes_extensible_for_many_channels_and_it_decodes(tmp_path: Path) -> None:
    data = sox_wav(tmp_path, 16000, 4, ["-e", "signed-integer", "-b", "16"])
    assert struct.unpack_from("<H", data, 20)[0] == 0xFFFE
    samples, rate = decode_wav(data)
    assert_tone(samples, rate, 16000)


def test_stereo_is_averaged() -> None:
    left = np.full(100, 1000, dtype=np.int16)
    right = np.full(100, -3000, dtype=np.int16)
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as writer:
        writer.setnchannels(2)
        writer.setsampwidth(2)
        writer.setframerate(8000)
        writer.writeframes(np.column_stack([left, right]).astype("<i2").tobytes())
    samples, _ = decode_wav(buffer.getvalue())
    assert np.all(samples == -1000)


def test_streamed_wav_with_placeholder_sizes_decodes() -> None:
    proper = encode_wav(np.arange(400, dtype=np.int16), 22050)
    streamed = bytearray(proper)
    struct.pack_into("<I", streamed, 4, 0x7FFFF024)
    struct.pack_into("<I", streamed, 40, 0x7FFFF000)
    samples, rate = decode_wav(bytes(streamed))
    assert rate == 22050
    assert np.array_equal(samples, np.arange(400, dtype=np.int16))


def test_encode_decode_round_trip() -> None:
    original = np.array([0, 1, -1, 32767, -32768, 1234], dtype=np.int16)
    samples, rate = decode_wav(encode_wav(original, 16000))
    assert rate == 16000
    assert np.array_equal(samples, original)


def test_encode_rejects_non_int16() -> None:
    with pytest.raises(MediaError, match="int16"):
        encode_wav(np.zeros(10, dtype=np.float32), 8000)


def valid_wav() -> bytes:
    return encode_wav(np.zeros(800, dtype=np.int16), 8000)


def patched(offset: int, fmt: str, value: int) -> bytes:
    data = bytearray(valid_wav())
    struct.pack_into(fmt, data, offset, value)
    return bytes(data)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "RIFF/WAVE"),
        (b"OggS" + bytes(40), "RIFF/WAVE"),
        (b"RIFF\x00\x00\x00\x00WAVE", "no 'fmt '"),
        (valid_wav()[:100], "truncated"),
        (patched(20, "<H", 0x0055), "format tag 0x0055"),
        (patched(34, "<H", 12), "12 bits"),
        (patched(22, "<H", 0), "0 channels"),
        (patched(22, "<H", 64), "64 channels"),
        (patched(24, "<I", 1), "sample rate 1 Hz"),
        (patched(32, "<H", 3), "block align"),
        (valid_wav()[:36], "no 'data'"),
    ],
)
def test_bad_wavs_raise_media_error(data: bytes, message: str) -> None:
    with pytest.raises(MediaError, match=message):
        decode_wav(data)


def test_limits_on_size_and_duration() -> None:
    ten_seconds = encode_wav(np.zeros(80_000, dtype=np.int16), 8000)
    with pytest.raises(MediaError, match=r"limit is 5\.0 s"):
        decode_wav(ten_seconds, WavLimits(max_seconds=5.0))
    with pytest.raises(MediaError, match="limit is 1000"):
        decode_wav(ten_seconds, WavLimits(max_bytes=1000))


def test_a_huge_claimed_size_cannot_allocate() -> None:
    with pytest.raises(MediaError, match="truncated"):
        decode_wav(patched(40, "<I", 0x10000000))


@pytest.mark.parametrize("from_rate", [8000, 16000, 22050, 44100])
@pytest.mark.parametrize("to_rate", [8000, 16000])
def test_resample_keeps_length_and_frequency(from_rate: int, to_rate: int) -> None:
    source = np.round(tone(from_rate, seconds=1.0) * 32767).astype(np.int16)
    out = resample(source, from_rate, to_rate)
    assert out.dtype == np.int16
    assert out.size == to_rate
    assert abs(peak_hz(out, to_rate) - TONE_HZ) < 2


def test_decode_wav_at_resamples(tmp_path: Path) -> None:
    data = sox_wav(tmp_path, 44100, 2, ["-e", "signed-integer", "-b", "24"])
    out = decode_wav_at(data, 8000)
    assert out.size == 4000
    assert abs(peak_hz(out, 8000) - TONE_HZ) < 4


def test_streaming_resampler_matches_one_shot_length_and_tone() -> None:
    source = np.round(tone(22050, seconds=1.0) * 32767).astype(np.int16)
    resampler = Resampler(22050, 8000)
    pieces = [resampler.process(chunk) for chunk in np.array_split(source, 50)]
    pieces.append(resampler.flush())
    out = np.concatenate(pieces)
    assert abs(out.size - 8000) <= 1
    assert abs(peak_hz(out, 8000) - TONE_HZ) < 2


def test_frames_pad_the_tail() -> None:
    rows = frames(np.arange(1, 401, dtype=np.int16))
    assert rows.shape == (3, 160)
    assert rows[2, 79] == 400
    assert np.all(rows[2, 80:] == 0)
    assert frames(np.zeros(0, dtype=np.int16)).shape == (0, 160)
    with pytest.raises(MediaError, match="frame size"):
        frames(np.zeros(4, dtype=np.int16), 0)


def test_silence_length() -> None:
    assert silence(500, 8000).size == 4000
    assert silence(-5, 8000).size == 0
