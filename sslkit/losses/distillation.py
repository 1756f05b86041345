"""Self-distillation losses: a student predicts a teacher's output for another view, and no
negative pair is ever used. Collapse is avoided by the method's rules (a predictor and a
stop-gradient, an EMA teacher, centring and sharpening), which live in the methods; these
functions are the pure losses. The teacher's tensors must be passed already detached.

- :func:`normalized_mse` — BYOL's ``2 − 2·cos(p, z)`` between the online prediction and the
  target projection ("Bootstrap Your Own Latent", 2020, arXiv 2006.07733); SimSiam uses its
  negative cosine, the same up to an affine map ("Exploring Simple Siamese Representation
  Learning", 2020, arXiv 2011.10566).
- :func:`dino_loss` — cross-entropy between the teacher's centred, sharpened softmax and the
  student's softmax over ``K`` prototypes, for every pair of different views ("Emerging
  Properties in Self-Supervised Vision Transformers", 2021, arXiv 2104.14294).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .._validate import check_same_shape, check_temperature, check_tensor

__all__ = ["normalized_mse", "dino_loss"]


def normalized_mse(p: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """``mean_i ‖p_i/‖p_i‖ − z_i/‖z_i‖‖² = mean_i (2 − 2·cos(p_i, z_i))``, in [0, 4].

    ``p`` ``(B, D)`` the online network's prediction, ``z`` ``(B, D)`` the target network's
    projection of the other view (detached by the caller: the stop-gradient is the method's rule,
    not the loss's). 0 when the directions agree, 2 for orthogonal vectors.

    Examples:
        >>> loss = normalized_mse(predictor(projector(backbone(x1))), target(x2).detach())
    """
    check_tensor("p", p, ("B", "D"))
    check_same_shape("p", p, "z", z)
    with torch.autocast(device_type=p.device.type, enabled=False):
        cos = F.cosine_similarity(p.float(), z.float(), dim=-1)     # (B,)
    return (2 - 2 * cos).mean()


def dino_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor,
              center: torch.Tensor, student_temperature: float = 0.1,
              teacher_temperature: float = 0.04) -> torch.Tensor:
    """DINO's loss over all pairs of *different* views.

    ``student_logits`` ``(Vs, B, K)``: every view (global and local crops) through the student;
    ``teacher_logits`` ``(Vt, B, K)``: the global views only through the teacher (detached), its
    first ``Vt`` views being the same crops as the student's first ``Vt``; ``center`` ``(K,)``.
    With ``P_t = softmax((t − center) / τ_t)`` (centring, then sharpening by a small τ_t) and
    ``log P_s = log_softmax(s / τ_s)``::

        loss = mean over pairs (i ≠ j) of mean_b  −Σ_k P_t[i, b, k] · log P_s[j, b, k]

    Centring alone would give a uniform output, sharpening alone one dominant prototype; the two
    together avoid both collapses. The centre is an EMA of the teacher's mean logits, kept by the
    method. The teacher is a target: no gradient flows into ``teacher_logits``. Returns a
    scalar.
    """
    check_tensor("student_logits", student_logits, ("Vs", "B", "K"))
    check_tensor("teacher_logits", teacher_logits, ("Vt", "B", "K"))
    vs, b, k = student_logits.shape
    vt = teacher_logits.shape[0]
    if teacher_logits.shape[1:] != (b, k) or vt > vs:
        raise ValueError(
            f"teacher_logits has shape {tuple(teacher_logits.shape)} for student_logits "
            f"{tuple(student_logits.shape)}: expected (Vt, {b}, {k}) with Vt <= {vs}")
    if getattr(center, "shape", None) != (k,):
        got = tuple(getattr(center, "shape", ()))
        raise ValueError(f"center must have shape ({k},), got {got}")
    if vs < 2:
        raise ValueError(f"student_logits has {vs} view: DINO needs at least 2 views")
    check_temperature(student_temperature, "student_temperature")
    check_temperature(teacher_temperature, "teacher_temperature")
    with torch.autocast(device_type=student_logits.device.type, enabled=False):
        p_t = F.softmax((teacher_logits.detach().float() - center.float()) / teacher_temperature,
                        dim=-1)
        log_p_s = F.log_softmax(student_logits.float() / student_temperature, dim=-1)
        ce = -torch.einsum("ibk,jbk->ijb", p_t, log_p_s).mean(dim=-1)   # (Vt, Vs)
    same = torch.eye(vt, vs, dtype=torch.bool, device=ce.device)        # view i with itself
    return ce[~same].mean()
