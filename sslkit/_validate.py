"""Argument checks shared by every module: one clear ``ValueError`` per bad hyperparameter.

Every public function that takes a hyperparameter with a range calls one of these helpers, so
that a learner who types ``temperature=-0.1`` reads *which* parameter was wrong, *what* value
it had and *which* values are allowed, instead of a NaN twenty steps later.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import torch


def _fmt_interval(low, high, low_open: bool, high_open: bool) -> str:
    left = "(" if low_open else "["
    right = ")" if high_open else "]"
    lo = "-inf" if low is None else f"{low:g}"
    hi = "inf" if high is None else f"{high:g}"
    return f"{left}{lo}, {hi}{right}"


def check_range(
    name: str,
    value,
    low=None,
    high=None,
    *,
    low_open: bool = False,
    high_open: bool = False,
    hint: str = "",
):
    """Return ``value`` if it lies in the interval, else raise ``ValueError``.

    ``low_open``/``high_open`` make the bound exclusive; ``None`` means unbounded. The message
    names the parameter, the value and the allowed interval, e.g.
    ``temperature=-0.1 is invalid: allowed range is (0, inf)``.
    """
    try:
        bad = value is None or (isinstance(value, float) and math.isnan(value))
        if not bad and low is not None:
            bad = value <= low if low_open else value < low
        if not bad and high is not None:
            bad = value >= high if high_open else value > high
    except TypeError:
        bad = True
    if bad:
        interval = _fmt_interval(low, high, low_open, high_open)
        msg = f"{name}={value!r} is invalid: allowed range is {interval}"
        raise ValueError(msg + (f". {hint}" if hint else ""))
    return value


def check_positive_int(name: str, value, *, allow_zero: bool = False, hint: str = "") -> int:
    """Return ``value`` if it is an ``int`` ≥ 1 (≥ 0 with ``allow_zero``), else raise."""
    low = 0 if allow_zero else 1
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        msg = f"{name}={value!r} is invalid: must be an integer >= {low}"
        raise ValueError(msg + (f". {hint}" if hint else ""))
    return value


def check_choice(name: str, value, choices: Iterable, *, hint: str = ""):
    """Return ``value`` if it is one of ``choices``, else raise ``ValueError`` listing them.

    Booleans match only booleans: ``1 == True`` in Python, but ``symmetric=1`` is a typo."""
    choices = tuple(choices)
    if not any(isinstance(value, bool) == isinstance(c, bool) and value == c for c in choices):
        msg = f"{name}={value!r} is invalid: choose one of {', '.join(map(repr, choices))}"
        raise ValueError(msg + (f". {hint}" if hint else ""))
    return value


def check_unit_interval_pair(name: str, pair, *, low_open: bool = True) -> tuple[float, float]:
    """Check a ``(low, high)`` pair inside (0, 1] (or [0, 1]) with ``low <= high``."""
    try:
        lo, hi = (float(v) for v in pair)
    except (TypeError, ValueError):
        raise ValueError(f"{name}={pair!r} is invalid: expected a pair (low, high)") from None
    for v in (lo, hi):
        check_range(name, v, 0.0, 1.0, low_open=low_open)
    if lo > hi:
        raise ValueError(f"{name}={pair!r} is invalid: low must be <= high")
    return lo, hi


def check_temperature(temperature, name: str = "temperature") -> float:
    """Return a softmax temperature τ if it is > 0, else raise ``ValueError``."""
    return check_range(name, temperature, 0.0, None, low_open=True,
                       hint="it divides the similarities; typical values are 0.05-0.5")


def check_optional_function(name: str, fn, *, signature: str = "a function"):
    """``fn`` if it is ``None`` or callable, else a ``ValueError`` naming what was expected
    (``signature``, e.g. ``"loss_fn(z1, z2, temperature) -> scalar tensor"``)."""
    if fn is not None and not callable(fn):
        raise ValueError(f"{name}={fn!r} is invalid: expected {signature}, or None")
    return fn


def check_same_shape(name_a: str, a, name_b: str, b) -> None:
    """Raise ``ValueError`` naming both unless ``a`` and ``b`` have the same shape (paired
    embeddings, two views, a prediction and its target)."""
    shape_a, shape_b = getattr(a, "shape", None), getattr(b, "shape", None)
    if shape_a is None or shape_a != shape_b:
        raise ValueError(f"{name_a} and {name_b} must have the same shape, got "
                         f"{tuple(shape_a or ())} and {tuple(shape_b or ())}")


def check_tensor(name: str, x, dims: Sequence[str], *, min_rows: int = 1):
    """Return ``x`` if it is a tensor with ``len(dims)`` dimensions and at least ``min_rows``
    entries along the first, else raise ``ValueError`` naming it, e.g.
    ``z must be a 2-D tensor (N, D), got shape (4,)``. ``dims`` names the axes for the message.
    """
    shape = tuple(x.shape) if hasattr(x, "shape") else type(x).__name__
    if not hasattr(x, "ndim") or not hasattr(x, "is_floating_point") or x.ndim != len(dims):
        raise ValueError(f"{name} must be a {len(dims)}-D tensor ({', '.join(dims)}), got "
                         f"shape {shape}")
    if x.shape[0] < min_rows:
        what = "is empty" if x.shape[0] == 0 else f"has {x.shape[0]} rows"
        raise ValueError(f"{name} {what} (shape {shape}): need at least {min_rows} ({dims[0]})")
    return x


def seeded_generator(seed: int | None, generator: torch.Generator | None) -> torch.Generator:
    """``generator`` if given, else a CPU generator seeded with ``seed`` (0 when ``None``): the
    one rule for functions that take either."""
    if generator is not None:
        return generator
    return torch.Generator().manual_seed(0 if seed is None else int(seed))
