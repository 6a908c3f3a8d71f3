"""G.711 µ-law (PCMU) and A-law (PCMA) on numpy arrays of any shape.

The lookup tables are built at import from the segment/quantisation rules of ITU-T G.711:

* µ-law works on a 14-bit scale (16-bit sample / 4). Segment ``s`` (0…7) has 16 steps of
  ``2**(s+1)``; its decoder outputs are ``((2*q + 33) << s) - 33`` for step ``q``; the decision
  values are the odd numbers between outputs, the first interval ``[-1, 1]`` decodes to 0.
* A-law works on a 13-bit scale (16-bit sample / 8). Segments 0 and 1 have steps of 2, segment
  ``s ≥ 2`` steps of ``2**s``; outputs are the midpoints of the intervals (there is no zero).
* Code bits: µ-law codes are the one's complement of ``sign|segment|step`` (``0xFF`` is +0,
  ``0x7F`` is −0); A-law codes have the even bits inverted (``^ 0x55``), sign bit 1 = positive.

Which input belongs to which interval, and why ``audioop`` is wrong for some µ-law inputs:
an int16 value lying strictly inside a decision interval must get that interval's code. The
stdlib ``audioop.lin2ulaw`` shifts a negative sample right by two *before* taking its
magnitude, which floors −1…−3 (−0.25…−0.75 on the 14-bit scale, inside the zero interval) to
magnitude 1 and encodes them as −8; the same one-step error hits 381 negative inputs in all
(three just inside each negative decision value), each given a code whose interval does not
contain it. Its decode tables and all of its A-law encoding agree with G.711.

Samples that sit exactly on a decision value are equally near both neighbours; we break such
ties like the ITU-T G.191 reference software: magnitudes of negative samples are taken as one's
complement (``-x - 1``), which makes the quantiser symmetric about −½ LSB, the
midpoint of the int16 range.
"""

from __future__ import annotations

import enum
from typing import Final

import numpy as np
import numpy.typing as npt

from voxflow.errors import MediaError

Int16Array = npt.NDArray[np.int16]
Uint8Array = npt.NDArray[np.uint8]

_SEGMENTS: Final = 8
_STEPS: Final = 16


def _ulaw_quantiser() -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Decoder outputs and step sizes (14-bit scale) for index ``segment * 16 + step``."""
    seg, step = np.divmod(np.arange(_SEGMENTS * _STEPS), _STEPS)
    return (((2 * step + 33) << seg) - 33).astype(np.int64), (2 << seg).astype(np.int64)


def _alaw_quantiser() -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Decoder outputs and step sizes (13-bit scale) for index ``segment * 16 + step``."""
    seg, step = np.divmod(np.arange(_SEGMENTS * _STEPS), _STEPS)
    step_size = np.where(seg == 0, 2, 1 << seg)
    segment_start = np.where(seg == 0, 0, 16 << seg)
    outputs = segment_start + step * step_size + step_size // 2
    return outputs.astype(np.int64), step_size.astype(np.int64)


def _build_encoder(
    magnitude_scale_shift: int,
    quantiser: tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]],
    code_of_index: npt.NDArray[np.int64],
    negative_code_of_index: npt.NDArray[np.int64],
) -> Uint8Array:
    """Encoder table indexed by the int16 sample viewed as uint16."""
    samples = np.arange(-32768, 32768, dtype=np.int64)
    # One's complement for negatives: the G.191 tie rule (see module docstring).
    magnitude = np.where(samples < 0, -samples - 1, samples) >> magnitude_scale_shift
    outputs, steps = quantiser
    # Outputs are interval midpoints (the µ-law zero interval [-1, 1] included), so each
    # interval's upper decision value is half a step above its output; beyond the last we clip.
    upper = outputs + steps // 2
    index = np.minimum(np.searchsorted(upper, magnitude, side="right"), outputs.size - 1)
    codes = np.where(samples < 0, negative_code_of_index[index], code_of_index[index])
    table = np.empty(65536, dtype=np.uint8)
    table[samples.astype(np.int16).view(np.uint16)] = codes
    return table


def _build_decoder(
    magnitude_scale_shift: int,
    quantiser: tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]],
    code_of_index: npt.NDArray[np.int64],
    negative_code_of_index: npt.NDArray[np.int64],
) -> Int16Array:
    outputs = quantiser[0]
    table = np.zeros(256, dtype=np.int16)
    table[code_of_index] = outputs << magnitude_scale_shift
    table[negative_code_of_index] = -(outputs << magnitude_scale_shift)
    return table


_INDEX: Final = np.arange(_SEGMENTS * _STEPS, dtype=np.int64)
_ULAW: Final = _ulaw_quantiser()
_ALAW: Final = _alaw_quantiser()
# Sign bit 0x80 before the bit inversion: set = negative for µ-law, set = positive for A-law.
_ULAW_POS: Final = _INDEX ^ 0xFF
_ULAW_NEG: Final = (_INDEX | 0x80) ^ 0xFF
_ALAW_POS: Final = (_INDEX | 0x80) ^ 0x55
_ALAW_NEG: Final = _INDEX ^ 0x55

_ULAW_ENCODE: Final = _build_encoder(2, _ULAW, _ULAW_POS, _ULAW_NEG)
_ALAW_ENCODE: Final = _build_encoder(3, _ALAW, _ALAW_POS, _ALAW_NEG)
_ULAW_DECODE: Final = _build_decoder(2, _ULAW, _ULAW_POS, _ULAW_NEG)
_ALAW_DECODE: Final = _build_decoder(3, _ALAW, _ALAW_POS, _ALAW_NEG)


def _as_int16(samples: npt.ArrayLike, what: str) -> Int16Array:
    array = np.asarray(samples)
    if array.dtype != np.int16:
        raise MediaError(f"{what} expects int16 samples, got dtype {array.dtype}")
    return array


def _as_codes(codes: npt.ArrayLike | bytes | bytearray | memoryview, what: str) -> Uint8Array:
    if isinstance(codes, bytes | bytearray | memoryview):
        return np.frombuffer(codes, dtype=np.uint8)
    array = np.asarray(codes)
    if array.dtype != np.uint8:
        raise MediaError(f"{what} expects uint8 codes or bytes, got dtype {array.dtype}")
    return array


def ulaw_encode(samples: npt.ArrayLike) -> Uint8Array:
    """Encode int16 samples (any shape) to µ-law codes of the same shape."""
    return _ULAW_ENCODE[_as_int16(samples, "ulaw_encode").view(np.uint16)]


def ulaw_decode(codes: npt.ArrayLike | bytes | bytearray | memoryview) -> Int16Array:
    """Decode µ-law codes (uint8 array of any shape, or bytes) to int16 samples."""
    return _ULAW_DECODE[_as_codes(codes, "ulaw_decode")]


def alaw_encode(samples: npt.ArrayLike) -> Uint8Array:
    """Encode int16 samples (any shape) to A-law codes of the same shape."""
    return _ALAW_ENCODE[_as_int16(samples, "alaw_encode").view(np.uint16)]


def alaw_decode(codes: npt.ArrayLike | bytes | bytearray | memoryview) -> Int16Array:
    """Decode A-law codes (uint8 array of any shape, or bytes) to int16 samples."""
    return _ALAW_DECODE[_as_codes(codes, "alaw_decode")]


class Codec(enum.StrEnum):
    """The two G.711 laws, named as in SDP (``a=rtpmap:0 PCMU/8000``, ``8 PCMA/8000``)."""

    PCMU = "PCMU"
    PCMA = "PCMA"

    @property
    def payload_type(self) -> int:
        """The static RTP payload type (RFC 3551)."""
        return 0 if self is Codec.PCMU else 8

    def encode_samples(self, samples: npt.ArrayLike) -> Uint8Array:
        """Encode int16 samples with this law."""
        return ulaw_encode(samples) if self is Codec.PCMU else alaw_encode(samples)

    def decode_codes(self, codes: npt.ArrayLike | bytes | bytearray | memoryview) -> Int16Array:
        """Decode codes of this law to int16 samples."""
        return ulaw_decode(codes) if self is Codec.PCMU else alaw_decode(codes)

    @classmethod
    def from_name(cls, name: str) -> Codec:
        """Look up a codec by its SDP encoding name (case-insensitive)."""
        try:
            return cls(name.upper())
        except ValueError:
            raise MediaError(f"unknown G.711 codec {name!r} (expected PCMU or PCMA)") from None
