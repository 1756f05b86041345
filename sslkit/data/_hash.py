"""Counter-based random numbers: every random number of ShapeWorld is ``hash(seed, stream, index)``.

A sequential generator (``torch.Generator``) hands out numbers in order, so image 5 would depend
on how many numbers images 0-4 consumed, on the chunk size and on whether we started at 0. A
counter-based hash makes sample ``i`` a pure function of ``(seed, start + i)``: ``render(cfg, 10,
start=5)`` equals ``render(cfg, 100)[5:15]`` bit for bit, whatever ``chunk_size``, and disjoint
index ranges give disjoint, reproducible splits. The hash is the 64-bit splitmix64 finaliser on
int64 tensors (multiplication wraps modulo 2^64; right shifts are masked to be logical).

Reference: *Fast splittable pseudorandom number generators* (Steele, Lea and Flood, 2014).
"""

from __future__ import annotations

import torch

_MASK64 = (1 << 64) - 1
_GOLDEN = 0x9E3779B97F4A7C15  # splitmix64's increment (2^64 / golden ratio)
_MIX1 = 0xBF58476D1CE4E5B9
_MIX2 = 0x94D049BB133111EB


def _signed64(v: int) -> int:
    """The int64 (two's complement) with the same 64 bits as the Python int ``v``."""
    v &= _MASK64
    return v - (1 << 64) if v >= 1 << 63 else v


def _mix64_int(z: int) -> int:
    """splitmix64's finaliser on a Python int (the reference that ``_mix64`` must match)."""
    z &= _MASK64
    z = ((z ^ (z >> 30)) * _MIX1) & _MASK64
    z = ((z ^ (z >> 27)) * _MIX2) & _MASK64
    return z ^ (z >> 31)


_MIX1_S, _MIX2_S, _GOLDEN_S = _signed64(_MIX1), _signed64(_MIX2), _signed64(_GOLDEN)


def _mix64(z: torch.Tensor) -> torch.Tensor:
    """splitmix64's finaliser, in place on an int64 tensor of any shape; returns ``z``.

    int64 multiplication wraps modulo 2^64 like the unsigned original; ``>>`` on int64 is an
    arithmetic shift, so the sign-extended bits are masked off to make it logical.
    """
    t = torch.empty_like(z)
    for shift, mult in ((30, _MIX1_S), (27, _MIX2_S), (31, None)):
        torch.bitwise_right_shift(z, shift, out=t)
        t.bitwise_and_((1 << (64 - shift)) - 1)
        z.bitwise_xor_(t)
        if mult is not None:
            z.mul_(mult)
    return z


def _stream_keys(seed: int, n_streams: int, device) -> torch.Tensor:
    """One 64-bit key per random stream: ``(n_streams,)`` int64, a function of ``seed`` only."""
    base = _mix64_int(_mix64_int(seed) + 0x5EED)
    keys = [_signed64(_mix64_int(base + (k + 1) * 0xD1B54A32D192ED03)) for k in range(n_streams)]
    return torch.tensor(keys, dtype=torch.int64, device=device)


def _sample_hashes(seed: int, index: torch.Tensor, n_streams: int) -> torch.Tensor:
    """Per-sample random bits: ``index`` (B,) int64 → (B, n_streams) int64.

    Entry ``[b, k]`` depends only on ``(seed, k, index[b])``.
    """
    keys = _stream_keys(seed, n_streams, index.device)
    z = index[:, None] * _GOLDEN_S + keys[None, :]
    return _mix64(_mix64(z))


def _unit64(z: torch.Tensor) -> torch.Tensor:
    """Uniform numbers in [0, 1) from the top 53 bits of int64 hashes (float64, same shape)."""
    return ((z >> 11) & ((1 << 53) - 1)).to(torch.float64) * 2.0**-53


def _counter_bits(key: torch.Tensor, count: int) -> torch.Tensor:
    """``count`` random 64-bit words per sample: ``key`` (B,) int64 → (B, count) int64.

    The splitmix64 sequence started at each sample's key; word ``j`` depends only on
    ``(key[b], j)``, so it is the same whatever batch the sample is drawn in.
    """
    j = torch.arange(1, count + 1, dtype=torch.int64, device=key.device)
    return _mix64(key[:, None] + j[None, :] * _GOLDEN_S)


# Named per-sample streams; distractor slot j uses _DISTRACTOR_BASE + 8 j + (0..7).
_S = {name: k for k, name in enumerate((
    "scale", "x", "y", "rotation", "hue", "saturation", "value", "bg_kind", "bg_hue", "bg_sat",
    "bg_value", "bg_hue2", "bg_value2", "bg_angle", "bg_period", "bg_phase", "bg_phase2",
    "n_distractors", "noise", "noise_key", "texture_key",
))}
_DISTRACTOR_BASE = 24
_MAX_DISTRACTORS = 8
_N_STREAMS = _DISTRACTOR_BASE + 8 * _MAX_DISTRACTORS
