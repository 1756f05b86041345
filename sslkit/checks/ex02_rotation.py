"""Self-checks of exercise 02 (pretext tasks): the rotation batch builder of RotNet.

The reference is ``sslkit.pretext.rotation_batch`` (*Unsupervised Representation Learning by
Predicting Image Rotations*, 2018, arXiv 1803.07728): every image in all four rotations,
rotation-major, rotation ``k`` being ``torch.rot90(image, k, dims=(-2, -1))``. A wrong answer is
diagnosed block by block: which rotation or reflection of the images each block of ``B`` rows
holds, whether the order is image-major, and whether the targets are tiled instead of repeated.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from ._core import CheckFailed, run_checks

__all__ = ["rotation_batch"]

_CONVENTION = ("rotation k is torch.rot90(image, k, dims=(-2, -1)), k·90° counter-clockwise as "
               "the image is displayed, and the batch is rotation-major: "
               "torch.cat([torch.rot90(images, k, dims=(-2, -1)) for k in range(4)])")


def _images(*shape: int, seed: int, dtype: torch.dtype = torch.uint8) -> torch.Tensor:
    """Seeded images of ``shape`` ``(B, C, H, W)``: uint8 in 0..255, or floats in [0, 1)."""
    generator = torch.Generator().manual_seed(seed)
    if dtype == torch.uint8:
        return torch.randint(0, 256, shape, generator=generator, dtype=torch.uint8)
    return torch.rand(shape, generator=generator, dtype=dtype)


def _corner_image() -> torch.Tensor:
    """One 1-channel 4×4 image, ``(1, 1, 4, 4)``, whose 16 pixels are 0…15 row by row, so each
    rotation and reflection puts different numbers in the corners."""
    return torch.arange(16, dtype=torch.uint8).reshape(1, 1, 4, 4)


def _transforms() -> dict[str, Callable[[torch.Tensor], torch.Tensor]]:
    """The eight symmetries of a square, named as the hints name them; the first four are the
    rotations k = 0, 1, 2, 3 of the convention."""
    def rot(k):
        return lambda x: torch.rot90(x, k, dims=(-2, -1))

    return {
        "the images unrotated (k = 0)": rot(0),
        "torch.rot90(x, 1): 90° counter-clockwise": rot(1),
        "torch.rot90(x, 2): 180°": rot(2),
        "torch.rot90(x, 3) = torch.rot90(x, -1): 90° clockwise": rot(3),
        "x.transpose(-2, -1): a reflection in the diagonal, not a rotation":
            lambda x: x.transpose(-2, -1),
        "torch.flip(x, dims=(-2,)): upside down, a reflection, not a rotation":
            lambda x: torch.flip(x, dims=(-2,)),
        "torch.flip(x, dims=(-1,)): a left-right mirror image, not a rotation":
            lambda x: torch.flip(x, dims=(-1,)),
        "a reflection in the anti-diagonal, not a rotation":
            lambda x: x.transpose(-2, -1).flip(-2, -1),
    }


def _what_is(block: torch.Tensor, images: torch.Tensor) -> str | None:
    for name, transform in _transforms().items():
        if block.shape == transform(images).shape and torch.equal(block, transform(images)):
            return name
    return None


def _is_image_major(images: torch.Tensor, got: torch.Tensor) -> bool:
    """True when ``got`` holds the four rotations of image 0, then those of image 1, …"""
    b = images.shape[0]
    if b == 1 or got.shape != (4 * b, *images.shape[1:]):
        return False
    image_major = got.reshape(b, 4, *images.shape[1:]).transpose(0, 1)
    return all(torch.equal(image_major[k], torch.rot90(images, k, dims=(-2, -1)))
               for k in range(4))


_IMAGE_MAJOR = ("your batch is image-major (the four rotations of image 0, then those of image 1, "
                "…, as torch.stack(..., dim=1) gives); the convention is rotation-major: first "
                "all B images unrotated, then all B rotated by 90°, and so on, "
                "torch.cat([torch.rot90(images, k, dims=(-2, -1)) for k in range(4)]), with "
                "targets torch.arange(4).repeat_interleave(B)")


def _rotation_diagnosis(images: torch.Tensor, got: torch.Tensor) -> str:
    """Say what the learner's ``(4B, C, H, W)`` batch holds, when it is not the reference's."""
    b = images.shape[0]
    found = [_what_is(got[k * b:(k + 1) * b], images) for k in range(4)]
    names = list(_transforms())
    if found == [names[0], names[3], names[2], names[1]]:
        return ("your rotations turn the wrong way: the rows with target 1 hold torch.rot90(x, -1) "
                "(90° clockwise) and those with target 3 hold torch.rot90(x, 1). Rotation k is "
                "torch.rot90(image, k, dims=(-2, -1)); dims=(-1, -2) or a negative k turns the "
                "other way")
    if _is_image_major(images, got):
        return _IMAGE_MAJOR
    for k, name in enumerate(found):
        if name != names[k]:
            rows = f"rows {k * b}…{k * b + b - 1}" if b > 1 else f"row {k}"
            what = name or "something that is neither a rotation nor a reflection of the images"
            return (f"{rows} (target {k}) should hold torch.rot90(x, {k}, dims=(-2, -1)) but "
                    f"hold {what}. {_CONVENTION[0].upper()}{_CONVENTION[1:]}")
    return _CONVENTION


def _targets_diagnosis(b: int, got: torch.Tensor) -> str:
    if got.dtype != torch.int64:
        return (f"targets have dtype {got.dtype}: class indices for F.cross_entropy are int64 "
                "(torch.long), as torch.arange returns them")
    values = got.detach().cpu()
    if b > 1 and torch.equal(values, torch.arange(4).repeat(b)):
        return ("your targets are tiled, [0, 1, 2, 3, 0, 1, 2, 3, …] (torch.arange(4).repeat(B)):"
                " they must follow the rotation-major batch, [0]*B + [1]*B + [2]*B + [3]*B, "
                "which is torch.arange(4).repeat_interleave(B)")
    if b > 1 and (torch.equal(values, torch.arange(b).repeat_interleave(4))
                  or torch.equal(values, torch.arange(b).repeat(4))):
        return "a target names the rotation k of its row (0…3), not the image it came from"
    return ("the rows k·B … k·B + B − 1 hold rotation k, so targets = "
            "torch.arange(4).repeat_interleave(B)")


def _structure(out, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    b = images.shape[0]
    if not (isinstance(out, tuple | list) and len(out) == 2):
        raise CheckFailed(f"expected a pair (rotated (4B, C, H, W), targets (4B,)), got "
                          f"{type(out).__name__}: return both, as pretext.rotation_batch does")
    rotated, targets = out
    shape = (4 * b, *images.shape[1:])
    if not isinstance(rotated, torch.Tensor):
        raise CheckFailed(f"rotated: expected a torch.Tensor, got {type(rotated).__name__}")
    if tuple(rotated.shape) != shape:
        hint = ""
        if tuple(rotated.shape) in ((b, 4, *images.shape[1:]), (4, b, *images.shape[1:])):
            hint = (": torch.stack adds a dimension; concatenate the four rotated batches "
                    "along dim 0 with torch.cat")
        raise CheckFailed(f"rotated: shape {tuple(rotated.shape)} differs from the expected "
                          f"{shape} (4 rotations × B = {b} images){hint}")
    if rotated.dtype != images.dtype:
        raise CheckFailed(f"rotated: dtype {rotated.dtype} differs from the images' "
                          f"{images.dtype}: a rotation only moves pixels, so uint8 images stay "
                          "uint8 (no .float(), no division by 255)")
    if not isinstance(targets, torch.Tensor):
        raise CheckFailed(f"targets: expected a torch.Tensor, got {type(targets).__name__} "
                          "(torch.arange(4).repeat_interleave(B))")
    if tuple(targets.shape) != (4 * b,):
        raise CheckFailed(f"targets: shape {tuple(targets.shape)} differs from the expected "
                          f"({4 * b},): one target per row of the rotated batch")
    return rotated, targets


def _compare_rotation(learner_fn: Callable, images: torch.Tensor) -> None:
    """Run ``learner_fn`` on a copy of ``images`` and compare with the reference exactly."""
    from .. import pretext

    want_rotated, want_targets = pretext.rotation_batch(images.clone())
    copy = images.clone()
    rotated, targets = _structure(learner_fn(copy), images)
    if not torch.equal(copy, images):
        raise CheckFailed("your function modified images in place; torch.rot90 and torch.cat "
                          "return new tensors")
    if targets.device != want_targets.device or not torch.equal(targets, want_targets):
        shown = targets.tolist() if targets.numel() <= 16 else targets[:16].tolist() + ["…"]
        raise CheckFailed(f"targets: got {shown}, expected "
                          f"{want_targets.tolist() if len(want_targets) <= 16 else '…'}. "
                          f"Hint: {_targets_diagnosis(images.shape[0], targets)}")
    if not torch.equal(rotated, want_rotated):
        raise CheckFailed(f"rotated: {int((rotated != want_rotated).sum())} of "
                          f"{rotated.numel()} pixel values differ from pretext.rotation_batch's. "
                          f"Hint: {_rotation_diagnosis(images, rotated)}")


def _non_square_raises(learner_fn: Callable) -> None:
    images = _images(2, 3, 4, 6, seed=26)
    try:
        learner_fn(images)
    except ValueError:
        return
    except NotImplementedError:
        raise
    except Exception as err:
        raise CheckFailed(f"your code raised {type(err).__name__}: {err}; expected a ValueError "
                          "naming the shape. Hint: check images.shape[-1] == images.shape[-2] "
                          "first and raise ValueError(...)") from err
    raise CheckFailed("no ValueError for images of shape (2, 3, 4, 6): a 90° rotation of a 4×6 "
                      "image is 6×4, so the four rotations cannot form one batch. Hint: check "
                      "images.shape[-1] == images.shape[-2] first and raise ValueError(...)")


def rotation_batch(learner_fn: Callable) -> None:
    """Check ``learner_fn(images) -> (rotated, targets)`` against ``sslkit.pretext.rotation_batch``.

    The batch of *Unsupervised Representation Learning by Predicting Image Rotations* (2018,
    arXiv 1803.07728): ``images`` ``(B, C, H, W)`` with ``H == W``, any dtype → ``rotated``
    ``(4B, C, H, W)`` of the same dtype and ``targets`` ``(4B,)`` int64, rotation-major (rows
    ``k·B … k·B + B − 1`` are all images rotated by ``torch.rot90(x, k, dims=(-2, -1))``, target
    ``k``). Outputs must be exactly equal. Cases (8): the returned shapes and dtypes; the
    targets' order (a tiled ``[0, 1, 2, 3, 0, …]`` is named); one 4×4 image whose pixels are
    0…15 (a clockwise turn, a transpose or a flip is named); seeded uint8 RGB images (an
    image-major order is named; the input must not change); float32 images keep their dtype; a
    batch of one 1-channel 5×5 image (odd side); float64 images 7×7; and non-square images, which
    must raise ``ValueError``.
    """
    def structure() -> None:
        images = _images(3, 3, 8, 8, seed=20)
        _structure(learner_fn(images.clone()), images)

    def targets() -> None:
        images = _images(3, 3, 8, 8, seed=20)
        rotated, got = _structure(learner_fn(images.clone()), images)
        want = torch.arange(4).repeat_interleave(3)
        if got.dtype != torch.int64 or not torch.equal(got.cpu(), want):
            hint = (_IMAGE_MAJOR if _is_image_major(images, rotated)
                    else _targets_diagnosis(3, got))
            raise CheckFailed(f"targets: got {got.tolist()}, expected {want.tolist()}. "
                              f"Hint: {hint}")

    run_checks("rotation_batch", {
        "returns (rotated (4B, C, H, W) of the images' dtype, targets (4B,)): B=3 uint8 RGB 8×8":
            structure,
        "targets are rotation-major int64: [0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3] for B=3": targets,
        "one 4×4 image with pixels 0…15: target k holds torch.rot90(x, k, dims=(-2, -1)), "
        "counter-clockwise": lambda: _compare_rotation(learner_fn, _corner_image()),
        "seeded uint8 images (5, 3, 8, 8), equal to pretext.rotation_batch; input unchanged":
            lambda: _compare_rotation(learner_fn, _images(5, 3, 8, 8, seed=21)),
        "float32 images (2, 3, 6, 6) stay float32": lambda: _compare_rotation(
            learner_fn, _images(2, 3, 6, 6, seed=22, dtype=torch.float32)),
        "a batch of one 1-channel 5×5 image (odd side)": lambda: _compare_rotation(
            learner_fn, _images(1, 1, 5, 5, seed=23)),
        "float64 images (4, 2, 7, 7)": lambda: _compare_rotation(
            learner_fn, _images(4, 2, 7, 7, seed=24, dtype=torch.float64)),
        "non-square images (2, 3, 4, 6) raise ValueError": lambda: _non_square_raises(learner_fn),
    })
