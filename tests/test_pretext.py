"""Pretext batch builders: rotations and jigsaw puzzles, checked pixel by pixel."""

from __future__ import annotations

import pytest
import torch

from sslkit.pretext import jigsaw_batch, jigsaw_permutations, rotation_batch


def test_rotation_batch_on_a_2x2_image():
    img = torch.tensor([[1, 2], [3, 4]], dtype=torch.uint8).expand(3, 2, 2)[None]  # (1,3,2,2)
    rotated, targets = rotation_batch(img)
    assert rotated.shape == (4, 3, 2, 2) and rotated.dtype == torch.uint8
    assert targets.tolist() == [0, 1, 2, 3]
    # 90° counter-clockwise as displayed (row 0 on top), written out by hand
    expected = [
        [[1, 2], [3, 4]],
        [[2, 4], [1, 3]],
        [[4, 3], [2, 1]],
        [[3, 1], [4, 2]],
    ]
    assert rotated[:, 0].tolist() == expected
    # the same with transposes and flips
    x = img[0]
    torch.testing.assert_close(rotated[1], x.transpose(-2, -1).flip(-2))
    torch.testing.assert_close(rotated[2], x.flip(-2).flip(-1))
    torch.testing.assert_close(rotated[3], x.transpose(-2, -1).flip(-1))


def test_rotation_targets_align_and_undo():
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (5, 3, 6, 6), generator=g, dtype=torch.uint8)
    rotated, targets = rotation_batch(images)
    assert rotated.shape == (20, 3, 6, 6) and targets.shape == (20,)
    assert targets.tolist() == [0] * 5 + [1] * 5 + [2] * 5 + [3] * 5
    for i in range(20):
        back = torch.rot90(rotated[i], -int(targets[i]), dims=(-2, -1))
        assert torch.equal(back, images[i % 5])
    # each rotation actually differs from the original (random images have no symmetry)
    assert not torch.equal(rotated[5:10], images)


def test_rotation_batch_validation():
    with pytest.raises(ValueError, match="square"):
        rotation_batch(torch.zeros(2, 3, 4, 5))
    with pytest.raises(ValueError, match="empty"):
        rotation_batch(torch.zeros(0, 3, 4, 4))
    with pytest.raises(ValueError, match=r"\(B, C, H, W\)"):
        rotation_batch(torch.zeros(3, 4, 4))


def _reassemble(tiles, targets, perms, grid):
    b, n, c, h, w = tiles.shape
    restored = torch.empty_like(tiles)
    for i in range(b):
        restored[i, perms[targets[i]]] = tiles[i]          # un-permute
    rows = restored.reshape(b, grid, grid, c, h, w).permute(0, 3, 1, 4, 2, 5)
    return rows.reshape(b, c, grid * h, grid * w)


@pytest.mark.parametrize("grid,size", [(2, 8), (3, 9), (3, 11)])
def test_jigsaw_tiles_reassemble(grid, size):
    g = torch.Generator().manual_seed(1)
    images = torch.randint(0, 256, (6, 3, size, size), generator=g, dtype=torch.uint8)
    perms = jigsaw_permutations(grid, num=10 if grid == 3 else None)
    tiles, targets = jigsaw_batch(images, grid, perms, generator=torch.Generator().manual_seed(2))
    h = size // grid
    assert tiles.shape == (6, grid * grid, 3, h, h) and tiles.dtype == torch.uint8
    assert targets.shape == (6,) and int(targets.max()) < len(perms)
    top = (size - grid * h) // 2
    crop = images[:, :, top:top + grid * h, top:top + grid * h]
    assert torch.equal(_reassemble(tiles, targets, perms, grid), crop)
    # the tile in position j really is original tile perm[j]: check one by hand
    p = perms[targets[0]]
    j = 1
    r, c = divmod(int(p[j]), grid)
    assert torch.equal(tiles[0, j], crop[0, :, r * h:(r + 1) * h, c * h:(c + 1) * h])


def test_jigsaw_is_seeded_and_draws_varied_targets():
    images = torch.zeros(64, 3, 4, 4)
    _, t1 = jigsaw_batch(images, generator=torch.Generator().manual_seed(3))
    _, t2 = jigsaw_batch(images, generator=torch.Generator().manual_seed(3))
    assert torch.equal(t1, t2) and len(t1.unique()) > 10


def test_jigsaw_permutations_sets():
    p2 = jigsaw_permutations(2)
    assert p2.shape == (24, 4) and len(p2.unique(dim=0)) == 24
    assert p2[0].tolist() == [0, 1, 2, 3]
    assert all(sorted(row) == [0, 1, 2, 3] for row in p2.tolist())
    p3 = jigsaw_permutations(3, num=30, seed=0)
    assert p3.shape == (30, 9) and len(p3.unique(dim=0)) == 30
    assert all(sorted(row) == list(range(9)) for row in p3.tolist())
    assert torch.equal(p3, jigsaw_permutations(3, num=30, seed=0))
    assert not torch.equal(p3, jigsaw_permutations(3, num=30, seed=1))
    # far apart: every pair of the chosen permutations differs in at least 6 of 9 positions,
    # while 30 random permutations almost surely contain a closer pair
    dist = (p3[:, None] != p3[None]).sum(-1) + 9 * torch.eye(30, dtype=torch.long)
    assert int(dist.min()) >= 6
    rand = torch.stack([torch.randperm(9, generator=torch.Generator().manual_seed(s))
                        for s in range(30)])
    rdist = (rand[:, None] != rand[None]).sum(-1) + 9 * torch.eye(30, dtype=torch.long)
    assert int(rdist.min()) < 6


def test_jigsaw_validation():
    images = torch.zeros(2, 3, 8, 8)
    for bad in (1, 0, 2.5):
        with pytest.raises(ValueError, match="grid"):
            jigsaw_batch(images, grid=bad)
    with pytest.raises(ValueError, match="grid"):
        jigsaw_permutations(1)
    with pytest.raises(ValueError, match="grid"):
        jigsaw_batch(images, grid=9)
    with pytest.raises(ValueError, match=r"permutations.*\(P, 4\)"):
        jigsaw_batch(images, grid=2, permutations=torch.zeros(5, 9, dtype=torch.long))
    with pytest.raises(ValueError, match="num"):
        jigsaw_permutations(2, num=25)
