"""Pretraining methods: each is a backbone, its heads, its loss and its step rules.

Every method subclasses :class:`Method` and is trained by :func:`sslkit.train.fit`.
"""

from .base import Method
from .supervised import Supervised

__all__ = ["Method", "Supervised"]
