"""Random and block masking (``sslkit.masking``): exact counts, consistent index tensors, uniform
random subsets, and blocks that are actually blocks."""

from __future__ import annotations

import math

import pytest
import torch

from sslkit import masking


def _shuffle(m: masking.Masking) -> torch.Tensor:
    """The permutation ``ids_restore`` inverts (visible patches first)."""
    return m.ids_restore.argsort(dim=1)


@pytest.mark.parametrize("make", [
    lambda g: masking.random_masking(32, 64, 0.75, generator=g),
    lambda g: masking.block_masking(32, 8, 0.75, generator=g),
    lambda g: masking.block_masking(32, 8, 0.3, num_blocks=3, generator=g),
], ids=["random", "block", "three blocks"])
def test_the_three_tensors_describe_one_masking(make):
    m = make(torch.Generator().manual_seed(0))
    b, n = m.mask.shape
    n_keep = m.keep_idx.shape[1]
    assert m.mask.dtype == torch.bool and m.keep_idx.dtype == m.ids_restore.dtype == torch.long
    assert (m.mask.sum(1) == n - n_keep).all()                 # the same count in every row
    # keep_idx lists exactly the visible patches
    visible = torch.zeros(b, n, dtype=torch.bool).scatter_(1, m.keep_idx, True)
    assert torch.equal(visible, ~m.mask)
    # ids_restore is a permutation that puts [visible; hidden] back in grid order
    assert torch.equal(m.ids_restore.sort(1).values, torch.arange(n).expand(b, n))
    shuffle = _shuffle(m)
    assert torch.equal(shuffle[:, :n_keep], m.keep_idx)
    assert torch.equal(shuffle.gather(1, m.ids_restore), torch.arange(n).expand(b, n))
    assert m.mask.gather(1, shuffle[:, n_keep:]).all()


@pytest.mark.parametrize("n, ratio, hidden", [(64, 0.75, 48), (16, 0.75, 12), (10, 0.25, 2),
                                              (10, 0.35, 4), (3, 0.5, 2)])
def test_the_number_hidden_is_rounded(n, ratio, hidden):
    assert masking.num_masked(n, ratio) == hidden                 # round(N · ratio)
    assert masking.random_masking(2, n, ratio).mask.sum(1).tolist() == [hidden, hidden]


@pytest.mark.parametrize("n, ratio", [(4, 0.1), (4, 0.9), (16, 0.0), (16, 1.0), (16, -0.5)])
def test_a_ratio_that_hides_none_or_all_is_refused(n, ratio):
    with pytest.raises(ValueError, match="mask_ratio"):
        masking.random_masking(2, n, ratio)


def test_random_masks_are_uniform_per_patch_and_per_pair_and_differ_per_image():
    b, n, ratio = 4_000, 16, 0.75
    m = masking.random_masking(b, n, ratio, generator=torch.Generator().manual_seed(1)).mask
    q = masking.num_masked(n, ratio) / n
    # each patch hidden with probability q: 5 binomial standard deviations
    freq = m.float().mean(0)
    assert (freq - q).abs().max() < 5 * math.sqrt(q * (1 - q) / b), freq
    # each pair hidden together with probability k(k-1)/(N(N-1)) for a uniform k-subset
    k = masking.num_masked(n, ratio)
    pair_q = k * (k - 1) / (n * (n - 1))
    pairs = (m.float().T @ m.float() / b)[~torch.eye(n, dtype=torch.bool)]
    assert (pairs - pair_q).abs().max() < 5 * math.sqrt(pair_q * (1 - pair_q) / b), pairs
    assert len({tuple(row.tolist()) for row in m[:64]}) > 32     # images get their own masks


def test_a_generator_makes_the_masks_reproducible():
    a, b = (masking.random_masking(8, 16, 0.5, generator=torch.Generator().manual_seed(3))
            for _ in range(2))
    assert all(torch.equal(x, y) for x, y in zip(a, b, strict=True))
    c = masking.random_masking(8, 16, 0.5, generator=torch.Generator().manual_seed(4))
    assert not torch.equal(a.mask, c.mask)


def _bounding_box(mask_row: torch.Tensor, grid: int) -> tuple[int, int]:
    rows, cols = mask_row.reshape(grid, grid).nonzero(as_tuple=True)
    return int(rows.max() - rows.min() + 1), int(cols.max() - cols.min() + 1)


def test_one_block_is_a_square_around_its_centre():
    # 9 of 64 patches with one block: everything within Chebyshev distance 1 of the centre (up
    # to 9 patches, fewer at a border), then ties at distance 2; never wider than 5 patches
    m = masking.block_masking(500, 8, 9 / 64, num_blocks=1,
                              generator=torch.Generator().manual_seed(0)).mask
    boxes = [_bounding_box(row, 8) for row in m]
    assert max(max(box) for box in boxes) <= 5, boxes
    assert sum(box == (3, 3) for box in boxes) > 250       # an interior centre: exactly 3 × 3
    # scattered random masks of the same size are almost never that compact
    r = masking.random_masking(500, 64, 9 / 64, generator=torch.Generator().manual_seed(0)).mask
    assert sum(max(_bounding_box(row, 8)) <= 5 for row in r) < 50


def test_block_masks_leave_fewer_hidden_patches_next_to_a_visible_one():
    def share(mask, grid):  # hidden patches with a visible 4-neighbour
        seen = torch.nn.functional.pad((~mask).float().reshape(-1, 1, grid, grid), (1,) * 4)
        near = (seen[..., :-2, 1:-1] + seen[..., 2:, 1:-1] + seen[..., 1:-1, :-2]
                + seen[..., 1:-1, 2:]).reshape(mask.shape) > 0
        return (near & mask).sum() / mask.sum()

    g = torch.Generator().manual_seed(0)
    block = masking.block_masking(200, 8, 0.5, generator=g).mask
    scattered = masking.random_masking(200, 64, 0.5, generator=g).mask
    assert share(block, 8) < 0.8 * share(scattered, 8)


def test_invalid_sizes_name_the_argument():
    with pytest.raises(ValueError, match="batch_size"):
        masking.random_masking(0, 16, 0.5)
    with pytest.raises(ValueError, match="grid"):
        masking.block_masking(2, 0, 0.5)
    with pytest.raises(ValueError, match="num_blocks"):
        masking.block_masking(2, 4, 0.5, num_blocks=0)
