"""Every test runs on ShapeWorld, whatever the shell's ``SSLKIT_DATASET`` says and whatever real
datasets this machine keeps in ``SSLKIT_DATA`` (the ``full`` profile would pick those up): a test
that wants a real dataset sets both itself, to files it fabricates."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _shapeworld(monkeypatch):
    monkeypatch.setenv("SSLKIT_DATASET", "shapeworld")
