"""sslkit: the library behind a hands-on course in self-supervised and unsupervised pretraining.

Modules follow the data, and each imports only modules to its left:
``data`` → ``views`` → ``models`` → ``pretext`` / ``masking`` / ``cluster`` / ``losses`` →
``methods`` → ``evaluate`` → ``train`` (with ``runs``, a run on disk) → ``baselines`` →
``plots`` / ``widgets``. ``theory`` is the small world of lecture 01. The course's tooling sits
apart: ``checks`` (self-checks), ``exercises``, ``grade``, ``report`` and ``course``.
Submodules are imported on first use (``sslkit.data``), so ``import sslkit`` stays fast.
"""

from __future__ import annotations

import importlib

from .profiles import device, profile, setup, sizes

__version__ = "0.1.0"
__all__ = ["__version__", "device", "profile", "sizes", "setup"]

_SUBMODULES = {
    "data", "views", "models", "pretext", "masking", "cluster", "losses", "methods", "evaluate",
    "train", "runs", "baselines", "plots", "widgets", "theory", "checks", "exercises", "grade",
    "report", "course", "gpu_check", "profiles",
}


def __getattr__(name: str):
    if name in _SUBMODULES:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module 'sslkit' has no attribute {name!r}")
