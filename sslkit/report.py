"""Key numbers of a notebook, gathered into the course report by ``make run``.

A notebook calls ``record("simclr_probe_acc_10pc", 0.53)`` next to the result it teaches.
Inside ``make run`` (``python -m sslkit.course``) each notebook's kernel gets
``SSLKIT_RESULTS`` (a JSON file) and ``SSLKIT_NOTEBOOK`` (its name); ``record`` adds the number
there, and the runner folds every file into ``build/results.json``. Run interactively, ``record``
keeps the numbers in memory (:func:`recorded`) and prints them, so nothing is written by surprise.
"""

from __future__ import annotations

import json
import math
import os
import re
from pathlib import Path

__all__ = ["record", "recorded"]

_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
_RECORDED: dict[str, float] = {}


def record(name: str, value, *, quiet: bool = False) -> float:
    """Record the metric ``name`` (lower_snake_case) with a finite numeric ``value``.

    Accuracies are fractions in [0, 1]; by convention ``_10pc`` means 10 labels per class.
    Returns the value as a float, so ``acc = record("x", acc)`` reads naturally.
    """
    if not isinstance(name, str) or not _NAME.match(name):
        raise ValueError(f"name={name!r} is invalid: use lower_snake_case, e.g. 'knn_acc_10pc'")
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"value={value!r} for {name!r} is invalid: must be a number") from None
    if not math.isfinite(value):
        raise ValueError(f"value={value!r} for {name!r} is invalid: must be finite")
    _RECORDED[name] = value
    path = os.environ.get("SSLKIT_RESULTS")
    if path:
        path = Path(path)
        data = json.loads(path.read_text()) if path.exists() else {}
        data[name] = value
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(data, indent=1, sort_keys=True))
    if not quiet:
        print(f"recorded {name} = {value:.4g}")
    return value


def recorded() -> dict[str, float]:
    """The metrics recorded in this process so far (name → value)."""
    return dict(_RECORDED)
