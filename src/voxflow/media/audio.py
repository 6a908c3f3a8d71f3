"""Audio file utilities: WAV decode/encode, resampling and 20 ms framing.

Everything here is pure: bytes and int16 numpy arrays in, bytes and arrays out. WAV input comes
from outside (the ``audio`` action, TTS providers), so every malformed or oversized file ends in
a :class:`~voxflow.errors.MediaError` that says what was wrong, never in a crash or a huge
allocation.
"""

from __future__ import annotations

import io
import struct
import wave
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt
import soxr

from voxflow.errors import MediaError
from voxflow.media.g711 import alaw_decode, ulaw_decode

Int16Array = npt.NDArray[np.int16]

FORMAT_PCM: Final = 0x0001
FORMAT_IEEE_FLOAT: Final = 0x0003
FORMAT_ALAW: Final = 0x0006
FORMAT_MULAW: Final = 0x0007
FORMAT_EXTENSIBLE: Final = 0xFFFE

MIN_SAMPLE_RATE: Final = 4000
MAX_SAMPLE_RATE: Final = 192_000
MAX_CHANNELS: Final = 8

# Streaming writers (espeak-ng --stdout, sox to a pipe) cannot know the length up front and put a
# placeholder near 2**31 (or 0) into the size fields; such a data chunk runs to the end of file.
_STREAMING_SIZE_FLOOR: Final = 0x7FFF0000


@dataclass(frozen=True)
class WavLimits:
    """Bounds on WAV input, so a hostile or broken file cannot exhaust memory."""

    max_bytes: int = 64 * 1024 * 1024
    max_seconds: float = 600.0


DEFAULT_LIMITS: Final = WavLimits()


@dataclass(frozen=True)
class _Format:
    tag: int
    channels: int
    sample_rate: int
    block_align: int
    bits: int


def _chunks(data: bytes) -> dict[bytes, tuple[int, int]]:
    """Map chunk id → (offset, size) of the first chunk of each id; stops at a streamed chunk."""
    found: dict[bytes, tuple[int, int]] = {}
    offset = 12
    while offset + 8 <= len(data):
        chunk_id = data[offset : offset + 4]
        (size,) = struct.unpack_from("<I", data, offset + 4)
        body = offset + 8
        remaining = len(data) - body
        if size > remaining:
            if chunk_id == b"data" and (size == 0 or size >= _STREAMING_SIZE_FLOOR):
                size = remaining
            else:
                raise MediaError(
                    f"WAV file is truncated: chunk {chunk_id!r} claims {size} bytes but only "
                    f"{remaining} follow"
                )
        elif chunk_id == b"data" and size == 0 and remaining > 0:
            size = remaining
        found.setdefault(chunk_id, (body, size))
        offset = body + size + (size & 1)  # chunks are word aligned
    return found


def _parse_format(body: bytes) -> _Format:
    if len(body) < 16:
        raise MediaError(f"WAV 'fmt ' chunk is {len(body)} bytes, needs at least 16")
    tag, channels, rate, _byte_rate, block_align, bits = struct.unpack_from("<HHIIHH", body)
    if tag == FORMAT_EXTENSIBLE:
        if len(body) < 40:
            raise MediaError("WAV WAVE_FORMAT_EXTENSIBLE 'fmt ' chunk is shorter than 40 bytes")
        # The sub-format GUID starts with the classic format tag.
        (tag,) = struct.unpack_from("<H", body, 24)
    return _Format(tag, channels, rate, block_align, bits)


def _check_format(fmt: _Format) -> None:
    if not 1 <= fmt.channels <= MAX_CHANNELS:
        raise MediaError(f"WAV has {fmt.channels} channels; 1 to {MAX_CHANNELS} are supported")
    if not MIN_SAMPLE_RATE <= fmt.sample_rate <= MAX_SAMPLE_RATE:
        raise MediaError(
            f"WAV sample rate {fmt.sample_rate} Hz is outside {MIN_SAMPLE_RATE}–{MAX_SAMPLE_RATE}"
        )
    supported = {
        FORMAT_PCM: (8, 16, 24, 32),
        FORMAT_IEEE_FLOAT: (32, 64),
        FORMAT_ALAW: (8,),
        FORMAT_MULAW: (8,),
    }
    if fmt.tag not in supported:
        raise MediaError(
            f"WAV format tag 0x{fmt.tag:04x} is not supported (PCM, IEEE float, A-law, µ-law)"
        )
    if fmt.bits not in supported[fmt.tag]:
        raise MediaError(f"WAV format tag 0x{fmt.tag:04x} with {fmt.bits} bits is not supported")
    if fmt.block_align != fmt.channels * fmt.bits // 8:
        raise MediaError(
            f"WAV block align {fmt.block_align} does not match {fmt.channels} channel(s) of "
            f"{fmt.bits} bits"
        )


def _to_int16(raw: bytes, fmt: _Format) -> Int16Array:
    """Interleaved samples of any supported encoding → int16 (still interleaved)."""
    if fmt.tag == FORMAT_MULAW:
        return ulaw_decode(raw)
    if fmt.tag == FORMAT_ALAW:
        return alaw_decode(raw)
    if fmt.tag == FORMAT_IEEE_FLOAT:
        floats = np.frombuffer(raw, dtype="<f4" if fmt.bits == 32 else "<f8")
        floats = np.nan_to_num(floats, nan=0.0, posinf=1.0, neginf=-1.0)
        scaled: Int16Array = np.clip(np.round(floats * 32767.0), -32768, 32767).astype(np.int16)
        return scaled
    if fmt.bits == 8:  # 8-bit PCM is unsigned with 128 as zero
        return ((np.frombuffer(raw, dtype=np.uint8).astype(np.int16) - 128) << 8).astype(np.int16)
    if fmt.bits == 16:
        return np.frombuffer(raw, dtype="<i2").astype(np.int16)
    if fmt.bits == 24:
        triples = np.frombuffer(raw, dtype=np.uint8).reshape(-1, 3)
        # The top two bytes of a little-endian 24-bit sample are its 16 most significant bits.
        return (triples[:, 1].astype(np.uint16) | (triples[:, 2].astype(np.uint16) << 8)).view(
            np.int16
        )
    return (np.frombuffer(raw, dtype="<i4") >> 16).astype(np.int16)


def _downmix(interleaved: Int16Array, channels: int) -> Int16Array:
    if channels == 1:
        return interleaved
    wide = interleaved.reshape(-1, channels).astype(np.int32)
    mono: Int16Array = (wide.sum(axis=1) // channels).astype(np.int16)
    return mono


def decode_wav(data: bytes, limits: WavLimits = DEFAULT_LIMITS) -> tuple[Int16Array, int]:
    """Decode a WAV file to ``(int16 mono samples, sample rate)``.

    Accepts PCM 8/16/24/32-bit, float32/64, A-law and µ-law, plain or WAVE_FORMAT_EXTENSIBLE,
    1–8 channels (averaged to mono). Raises :class:`MediaError` for anything else.
    """
    if len(data) > limits.max_bytes:
        raise MediaError(f"WAV file is {len(data)} bytes; the limit is {limits.max_bytes}")
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise MediaError("not a WAV file: it does not start with a RIFF/WAVE header")
    chunks = _chunks(data)
    if b"fmt " not in chunks:
        raise MediaError("WAV file has no 'fmt ' chunk")
    if b"data" not in chunks:
        raise MediaError("WAV file has no 'data' chunk")
    fmt_offset, fmt_size = chunks[b"fmt "]
    fmt = _parse_format(data[fmt_offset : fmt_offset + fmt_size])
    _check_format(fmt)
    data_offset, data_size = chunks[b"data"]
    frame_count = data_size // fmt.block_align
    seconds = frame_count / fmt.sample_rate
    if seconds > limits.max_seconds:
        raise MediaError(f"WAV audio is {seconds:.1f} s long; the limit is {limits.max_seconds} s")
    raw = data[data_offset : data_offset + frame_count * fmt.block_align]
    return _downmix(_to_int16(raw, fmt), fmt.channels), fmt.sample_rate


def encode_wav(samples: npt.ArrayLike, sample_rate: int) -> bytes:
    """Encode int16 mono samples as a 16-bit PCM WAV file."""
    pcm = _as_mono_int16(samples)
    _check_rate(sample_rate)
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as writer:
        writer.setnchannels(1)
        writer.setsampwidth(2)
        writer.setframerate(sample_rate)
        writer.writeframes(pcm.astype("<i2").tobytes())
    return buffer.getvalue()


def _as_mono_int16(samples: npt.ArrayLike) -> Int16Array:
    array = np.asarray(samples)
    if array.ndim != 1:
        raise MediaError(f"expected mono samples (a 1-D array), got shape {array.shape}")
    if array.dtype != np.int16:
        raise MediaError(f"expected int16 samples, got {array.dtype}")
    return array


def _check_rate(rate: int) -> None:
    if not MIN_SAMPLE_RATE <= rate <= MAX_SAMPLE_RATE:
        raise MediaError(f"sample rate {rate} Hz is outside {MIN_SAMPLE_RATE}–{MAX_SAMPLE_RATE}")


def resample(samples: npt.ArrayLike, from_rate: int, to_rate: int) -> Int16Array:
    """Resample a whole int16 mono buffer (soxr, high quality)."""
    pcm = _as_mono_int16(samples)
    _check_rate(from_rate)
    _check_rate(to_rate)
    if from_rate == to_rate or pcm.size == 0:
        return pcm.copy()
    out: Int16Array = soxr.resample(pcm, from_rate, to_rate)
    return out


def decode_wav_at(data: bytes, sample_rate: int, limits: WavLimits = DEFAULT_LIMITS) -> Int16Array:
    """Decode a WAV file and resample it to ``sample_rate`` (what the ``audio`` action needs)."""
    samples, rate = decode_wav(data, limits)
    return resample(samples, rate, sample_rate)


class Resampler:
    """Streaming int16 mono resampler for per-frame use; keeps filter state between frames."""

    def __init__(self, from_rate: int, to_rate: int) -> None:
        _check_rate(from_rate)
        _check_rate(to_rate)
        self.from_rate = from_rate
        self.to_rate = to_rate
        self._stream = soxr.ResampleStream(from_rate, to_rate, 1, dtype="int16")

    def process(self, samples: npt.ArrayLike) -> Int16Array:
        """Resample the next chunk; the output lags by the filter delay (see :meth:`flush`)."""
        out: Int16Array = self._stream.resample_chunk(_as_mono_int16(samples))
        return out

    def flush(self) -> Int16Array:
        """Return the samples still held in the filter at the end of the stream."""
        out: Int16Array = self._stream.resample_chunk(np.zeros(0, dtype=np.int16), last=True)
        return out


def frames(samples: npt.ArrayLike, frame_samples: int = 160) -> Int16Array:
    """Split into rows of ``frame_samples`` (20 ms at 8 kHz by default), zero-padding the tail."""
    if frame_samples <= 0:
        raise MediaError(f"frame size must be positive, got {frame_samples}")
    pcm = _as_mono_int16(samples)
    count = -(-pcm.size // frame_samples)
    padded = np.zeros(count * frame_samples, dtype=np.int16)
    padded[: pcm.size] = pcm
    return padded.reshape(count, frame_samples)


def silence(duration_ms: int, sample_rate: int) -> Int16Array:
    """Zero samples lasting ``duration_ms``."""
    return np.zeros(max(0, duration_ms) * sample_rate // 1000, dtype=np.int16)
