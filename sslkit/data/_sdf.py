"""Signed distance fields of ShapeWorld's ten shapes (after Inigo Quilez's 2D distance functions).

An SDF is a function of the position that is negative inside the shape, positive outside and
equal to the distance to the edge. Coordinates are in object units: the shape fits the unit
disc and y points up. ``_SDF[name](x, y)`` maps tensors of any shape to distances of the same
shape, using only arithmetic, ``sqrt``, ``abs``, ``sign`` and ``min``/``max``/``clamp``.
"""

from __future__ import annotations

import math

import torch


def _length(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return torch.sqrt(x * x + y * y)


def _sd_box(x, y, bx: float, by: float):
    """Box with half-sizes ``(bx, by)`` centred at the origin (exact)."""
    dx = x.abs() - bx
    dy = y.abs() - by
    return _length(dx.clamp(min=0), dy.clamp(min=0)) + torch.maximum(dx, dy).clamp(max=0)


def _sd_circle(x, y):
    return _length(x, y) - 0.78


_SQRT3 = math.sqrt(3.0)


def _sd_triangle(x, y, r: float = 0.8227):
    """Equilateral triangle, apex up, half-side ``r`` (circumradius 0.95), centroid at 0."""
    px = x.abs() - r
    py = y + r / _SQRT3
    fold = px + _SQRT3 * py > 0
    qx = torch.where(fold, (px - _SQRT3 * py) * 0.5, px)
    qy = torch.where(fold, (-_SQRT3 * px - py) * 0.5, py)
    qx = qx - qx.clamp(-2 * r, 0)
    return -_length(qx, qy) * torch.sign(qy)


def _sd_square(x, y):
    return _sd_box(x, y, 0.65, 0.65)


_K1X, _K1Y = 0.809016994375, -0.587785252292  # (cos 36°, -sin 36°)


def _sd_star(x, y, r: float = 0.95, rf: float = 0.52):
    """Five-pointed star, one point up, outer radius ``r``, inner/outer ratio ~``rf`` (exact)."""
    k2x, k2y = -_K1X, _K1Y
    x = x.abs()
    d = (_K1X * x + _K1Y * y).clamp(min=0) * 2
    x, y = x - d * _K1X, y - d * _K1Y
    d = (k2x * x + k2y * y).clamp(min=0) * 2
    x, y = x - d * k2x, y - d * k2y
    x = x.abs()
    y = y - r
    bax, bay = rf * -_K1Y, rf * _K1X - 1.0
    h = ((x * bax + y * bay) / (bax * bax + bay * bay)).clamp(0, r)
    return _length(x - bax * h, y - bay * h) * torch.sign(y * bax - x * bay)


def _sd_heart(x, y, k: float = 0.7291, cy: float = 0.6564):
    """Heart, tip down: the unit heart (tip at 0, top at 1.1) moved to its centroid, scaled."""
    return _heart_unit((x * k).abs(), y * k + cy) / k


def _heart_unit(x, y):
    # x >= 0 (the heart is symmetric). Upper lobes are circles; the lower part is the distance
    # to two segments.
    lobe = _length(x - 0.25, y - 0.75) - math.sqrt(2.0) / 4
    m = (x + y).clamp(min=0) * 0.5
    d1 = x * x + (y - 1) * (y - 1)
    d2 = (x - m) * (x - m) + (y - m) * (y - m)
    lower = torch.sqrt(torch.minimum(d1, d2)) * torch.sign(x - y)
    return torch.where(x + y > 1, lobe, lower)


def _sd_cross(x, y):
    return torch.minimum(_sd_box(x, y, 0.9, 0.28), _sd_box(x, y, 0.28, 0.9))


def _sd_ring(x, y):
    return (_length(x, y) - 0.7).abs() - 0.2


def _sd_crescent(x, y, k: float = 0.8453, cx: float = -0.2736):
    """Disc of radius 0.9 minus a disc of radius 0.62 shifted by 0.45, opening to the right."""
    x = x / k + cx
    y = y / k
    return torch.maximum(_length(x, y) - 0.9, 0.62 - _length(x - 0.45, y)) * k


def _sd_bar(x, y):
    return _sd_box(x, y, 0.88, 0.34)


def _sd_isosceles(x, y, wx: float, hy: float):
    """Isosceles triangle with apex at 0 and base (half-width ``wx``) at ``y = hy`` (exact)."""
    x = x.abs()
    t = ((x * wx + y * hy) / (wx * wx + hy * hy)).clamp(0, 1)
    ax, ay = x - wx * t, y - hy * t
    tb = (x / wx).clamp(0, 1)
    bx, by = x - wx * tb, y - hy
    dist2 = torch.minimum(ax * ax + ay * ay, bx * bx + by * by)
    inside = torch.minimum(y * wx - x * hy, hy - y)  # > 0 inside
    return -torch.sqrt(dist2) * torch.sign(inside)


def _sd_arrow(x, y, k: float = 0.9634, cy: float = 0.0271):
    """Arrow pointing up: triangular head (base at y = 0.23) on a shaft.

    The shaft reaches into the head (to y = 0.43): a union by ``min`` is only a distance deep
    inside where the parts overlap, and touching parts would leave a half-covered seam.
    """
    x = x / k
    y = y / k + cy
    head = _sd_isosceles(x, 0.95 - y, 0.68, 0.72)
    shaft = _sd_box(x, y + 0.25, 0.25, 0.68)
    return torch.minimum(head, shaft) * k


# Areas (unit disc = π): circle 1.91, ring 1.76, cross 1.70, square 1.68, heart 1.68, star 1.38,
# bar 1.19, triangle 1.17, crescent 1.06, arrow 0.99. Thin shapes cannot grow inside the unit
# disc, so the round ones are kept smaller than they could be: the object's area alone (a cue a
# random network picks up) then says less about its class.
_SDF = {
    "circle": _sd_circle, "triangle": _sd_triangle, "square": _sd_square, "star": _sd_star,
    "heart": _sd_heart, "cross": _sd_cross, "ring": _sd_ring, "crescent": _sd_crescent,
    "bar": _sd_bar, "arrow": _sd_arrow,
}
