"""The declaration of a panel's hyperparameters and the control each one gets.

:func:`hparam` declares a dataclass field with its range; :func:`_control` checks the declaration
and builds its ipywidgets control. Used by :mod:`sslkit.widgets` (see its docstring).
"""

from __future__ import annotations

import dataclasses
import math

import ipywidgets as W

from ._validate import check_choice, check_range

_KEY = "sslkit.hparam"
_INT_LADDER, _FLOAT_LADDER = (1, 2, 3, 5), (1, 1.5, 2, 3, 5, 7)


@dataclasses.dataclass(frozen=True)
class HParam:
    """The declared range of one hyperparameter (stored in the field's ``metadata``)."""

    low: float | None = None
    high: float | None = None
    step: float | None = None
    log: bool = False
    options: tuple | None = None
    help: str = ""
    label: str | None = None
    unit: str = ""
    include: tuple = ()


def hparam(default, *, low=None, high=None, step=None, log=False, options=None, help="",
           label=None, unit="", include=()):
    """A dataclass field with a default and the range its control allows.

    ``low``/``high`` (and optional ``step``, ignored by a float ``log`` range, which is a ladder
    of round values) for numbers, ``options`` for a choice, nothing for a ``bool``. ``help`` is
    shown beside the control; ``label`` (default: the field name in words) and ``unit`` name it;
    ``include`` adds exact values to a ``log`` ladder (the values a lecture quotes). The range is
    checked when a :class:`Panel` is built, so that errors can name the field.
    """
    opts = tuple(options) if options is not None else None
    spec = HParam(low, high, step, log, opts, help, label, unit, tuple(include))
    return dataclasses.field(default=default, metadata={_KEY: spec})


def _fmt(v) -> str:
    return f"{v:.3g}" if isinstance(v, float) else repr(v)


def _exact(v) -> str:
    """A value as it was written: the shortest text that reads back as the same number."""
    if isinstance(v, float):
        return f"{v:g}" if float(f"{v:g}") == v else repr(v)
    return str(v)


def _ladder(low, high, default, include=(), *, integer: bool = True) -> list:
    """Round values m·10ᵏ inside [low, high] (ints: m in 1, 2, 3, 5; floats: 1, 1.5, 2, 3, 5, 7),
    plus low, high, the default and ``include``; floats are the decimal literals (``0.05``, not
    ``0.0502``), so the lecture's values are held exactly."""
    values = {low, high, default, *include}
    for k in range(math.floor(math.log10(low)), math.ceil(math.log10(high)) + 1):
        for m in _INT_LADDER if integer else _FLOAT_LADDER:
            v = m * 10**k if integer else float(f"{m}e{k}")
            if low <= v <= high and (k >= 0 or not integer):
                values.add(v)
    return sorted(values, key=float)


def _label(f: dataclasses.Field, spec: HParam) -> str:
    """``label`` or the field name in words (``max_rotation_deg`` → ``max rotation (°)``), then
    `` (unit)``."""
    name, unit = f.name, spec.unit
    if name.endswith("_deg") and not unit:
        name, unit = name[:-4], "°"
    text = spec.label or name.replace("_", " ")
    return f"{text} ({unit})" if unit else text


def _control(cls, f: dataclasses.Field, hint) -> tuple[W.Widget, type]:
    """Check one field's declaration and build its widget; return (widget, value type)."""
    name, default = f"{cls.__name__}.{f.name}", f.default
    spec = f.metadata.get(_KEY)
    if spec is None:
        raise ValueError(f"{name} has no declared range: write it as "
                         f"{f.name}: type = hparam(default, low=..., high=...) or options=(...)")
    kind = hint if hint in (bool, int, float, str) else type(default)
    common = dict(description=_label(f, spec), tooltip=spec.help or None,
                  style={"description_width": "initial"}, layout=W.Layout(width="440px"))
    numeric = (spec.low, spec.high, spec.step)
    if spec.options is not None:
        if any(v is not None for v in numeric) or not spec.options:
            raise ValueError(f"{name}: options={spec.options!r} must be non-empty and comes "
                             "without low/high/step")
        check_choice(name, default, spec.options)
        return W.Dropdown(options=list(spec.options), value=default, **common), object
    if kind is bool:
        if any(v is not None for v in numeric) or not isinstance(default, bool):
            raise ValueError(f"{name}: a bool field takes hparam(True/False) and no range")
        return W.Checkbox(value=default, indent=False, **common), bool
    if kind not in (int, float) or spec.low is None or spec.high is None:
        raise ValueError(f"{name}={default!r}: declare low= and high= for a number, or options=")
    if kind is int and not all(isinstance(v, int) for v in (default, *numeric, *spec.include)
                               if v is not None):
        raise ValueError(f"{name}: an int field needs int default/low/high/step, got "
                         f"default={default!r}, low={spec.low!r}, high={spec.high!r}")
    check_range(f"{name}.high", spec.high, spec.low, None, low_open=True,
                hint="high must be greater than low")
    if spec.log:
        check_range(f"{name}.low", spec.low, 0, None, low_open=True,
                    hint="a log range needs low > 0")
    check_range(name, default, spec.low, spec.high, hint="the default must lie inside the range")
    if spec.step is not None:
        check_range(f"{name}.step", spec.step, 0, None, low_open=True)
    if spec.include and not spec.log:
        raise ValueError(f"{name}: include= adds values to a log ladder; declare log=True")
    for v in spec.include:
        check_range(f"{name}.include", v, spec.low, spec.high, hint="inside the range")
    if kind is int and spec.log and spec.step is not None:
        raise ValueError(f"{name}: an int log range is a 1-2-3-5 ladder and takes no step")
    if spec.log:
        integer = kind is int
        cast = int if integer else float
        values = _ladder(cast(spec.low), cast(spec.high), cast(default),
                         tuple(map(cast, spec.include)), integer=integer)
        return W.SelectionSlider(options=[(_exact(v), v) for v in values], value=cast(default),
                                 **common), cast
    if kind is int:
        return W.IntSlider(value=default, min=spec.low, max=spec.high, step=spec.step or 1,
                           **common), int
    return W.FloatSlider(value=float(default), min=spec.low, max=spec.high,
                         step=spec.step or (spec.high - spec.low) / 100, readout_format=".3g",
                         **common), float
