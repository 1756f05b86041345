"""sslkit: the library behind a hands-on course in self-supervised and unsupervised pretraining.

Modules follow the data: ``data`` → ``views`` → ``models`` → ``losses`` → ``methods`` →
``train`` → ``evaluate`` → ``plots`` / ``widgets`` / ``checks`` / ``grade`` / ``report``.
Submodules are imported on first use (``sslkit.data``), so ``import sslkit`` stays fast.
"""

from __future__ import annotations

import importlib

from .profiles import device, profile, setup, sizes

__version__ = "0.1.0"
__all__ = ["__version__", "device", "profile", "sizes", "setup"]

_SUBMODULES = {
    "data", "views", "models", "losses", "methods", "train", "evaluate", "plots",
    "widgets", "checks", "grade", "report", "exercises", "theory",
}


def __getattr__(name: str):
    if name in _SUBMODULES:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module 'sslkit' has no attribute {name!r}")
