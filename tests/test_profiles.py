"""`sslkit.profiles`: the profile override and the base seed a lecture derives its seeds from."""

from __future__ import annotations

import pytest

from sslkit import profiles


def test_the_base_seed_comes_from_the_environment(monkeypatch):
    monkeypatch.delenv("SSLKIT_SEED", raising=False)
    assert profiles.sizes("03_contrastive_simclr", "quick").seed == 0
    monkeypatch.setenv("SSLKIT_SEED", " 7 ")
    assert profiles.base_seed() == 7
    assert profiles.sizes("03_contrastive_simclr", "quick").seed == 7
    assert profiles.sizes(None, "full").seed == 7


@pytest.mark.parametrize("bad", ["-1", "1.5", "one", "0x2"])
def test_a_bad_base_seed_is_named(monkeypatch, bad):
    monkeypatch.setenv("SSLKIT_SEED", bad)
    with pytest.raises(ValueError, match=f"SSLKIT_SEED='{bad}' is invalid"):
        profiles.sizes("03_contrastive_simclr", "quick")


def test_the_profile_override_and_per_notebook_sizes(monkeypatch):
    monkeypatch.setenv("SSLKIT_PROFILE", "FULL")
    assert profiles.profile() == "full"
    monkeypatch.setenv("SSLKIT_PROFILE", "fast")
    with pytest.raises(ValueError, match="SSLKIT_PROFILE"):
        profiles.profile()
    quick, full = (profiles.sizes("03_contrastive_simclr", p) for p in ("quick", "full"))
    assert (quick.preset, full.preset) == ("easy", "hard")   # the notebook's own override
    assert profiles.sizes("99_unknown", "quick").preset == "hard"  # the common sizes
