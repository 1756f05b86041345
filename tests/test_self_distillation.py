"""Self-distillation methods (BYOL, SimSiam, DINO): where the gradient flows and where it must
not, the moving averages by hand, and the collapse diagnostics they log.

With the identity view (a full-image crop, no flip, no colour) both views of an image are the
image itself, so a target that starts as an exact copy of the online network must give exactly
the online network's output: every check below that compares the two relies on it.
"""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from sslkit import evaluate, losses, models, views
from sslkit.methods import BYOL, DINO, SimSiam, momentum_at, update_center_

IDENTITY = views.Recipe(size=32, crop_scale=(1.0, 1.0), crop_ratio=(1.0, 1.0), flip_p=0.0,
                        jitter_p=0.0, grayscale_p=0.0)
EPS = torch.finfo(torch.float32).eps


def _cnn() -> models.SmallCNN:
    return models.SmallCNN(widths=(8, 16, 32))


def _images(n=16, seed=0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, 3, 32, 32), generator=g, dtype=torch.uint8)


def _first_grad(module: nn.Module) -> torch.Tensor:
    return next(p for p in module.parameters() if p.requires_grad).grad.clone()


# ----------------------------------------------------------------------------- schedules
def test_cosine_momentum_rises_from_m_to_one_and_a_time_budget_keeps_it():
    assert momentum_at(0.9, "cosine", 0, 10) == pytest.approx(0.9)
    assert momentum_at(0.9, "cosine", 5, 10) == pytest.approx(0.95)      # cos(π/2) = 0
    assert momentum_at(0.9, "cosine", 10, 10) == pytest.approx(1.0)
    assert momentum_at(0.9, "cosine", 12, 10) == pytest.approx(1.0)      # clamped after T
    assert momentum_at(0.9, "cosine", 5, None) == 0.9
    assert momentum_at(0.9, "constant", 5, 10) == 0.9


# ----------------------------------------------------------------------------- BYOL
def test_byol_without_predictor_starts_at_zero_loss_because_the_target_is_a_copy():
    # p = z = t for identical views, so 2 − 2·cos = 0 up to float32 rounding of a cosine: each
    # of the two normalisations and the dot product sums D terms (relative error ≤ D·EPS each,
    # in any summation order), so |2 − 2·cos| ≤ 2·3·D·EPS.
    torch.manual_seed(0)
    method = BYOL(_cnn(), predictor="none", recipe=IDENTITY)
    loss, logs = method.training_step(_images())
    bound = 6 * method.projector.out_dim * EPS
    assert abs(loss.item()) < bound
    assert logs["cos_sim"] == pytest.approx(1.0, abs=bound)


def test_byol_gradient_reaches_the_online_network_and_never_the_target():
    torch.manual_seed(0)
    method = BYOL(_cnn(), recipe=IDENTITY)
    loss, _ = method.training_step(_images())
    loss.backward()
    assert _first_grad(method.backbone).abs().sum() > 0
    assert _first_grad(method.predictor).abs().sum() > 0
    target = [*method.target_backbone.parameters(), *method.target_projector.parameters()]
    assert all(not p.requires_grad and p.grad is None for p in target)


def test_byol_target_moves_by_the_scheduled_moving_average():
    torch.manual_seed(0)
    method = BYOL(_cnn(), momentum=0.9)
    before = [p.clone() for p in method.target_projector.parameters()]
    with torch.no_grad():
        for p in [*method.backbone.parameters(), *method.projector.parameters()]:
            p.add_(1.0)
    method.on_step_end(step=5, total_steps=10)                            # m = 0.95
    after = list(method.target_projector.parameters())
    online = list(method.projector.parameters())
    for b, a, o in zip(before, after, online, strict=True):
        torch.testing.assert_close(a, 0.95 * b + 0.05 * o)


def test_byol_linear_predictor_is_one_square_matrix():
    method = BYOL(_cnn(), proj_dim=16, predictor="linear")
    assert isinstance(method.predictor, nn.Linear)
    assert method.predictor.weight.shape == (16, 16) and method.predictor.bias is None


# ----------------------------------------------------------------------------- SimSiam
@pytest.mark.parametrize("stop_gradient", [True, False])
def test_simsiam_gradient_matches_the_loss_written_with_and_without_stop_gradient(stop_gradient):
    torch.manual_seed(0)
    images = _images()
    method = SimSiam(_cnn(), stop_gradient=stop_gradient, recipe=IDENTITY)
    loss, _ = method.training_step(images)
    loss.backward()
    got = _first_grad(method.backbone)
    method.zero_grad()
    # The paper's Algorithm 1, with D(p, z) = −cos(p, z).
    x = views.augment(images, IDENTITY)
    z1 = method.projector(method.backbone(torch.cat([x, x])))
    z1, z2 = z1.chunk(2)
    p1, p2 = method.predictor(torch.cat([z1, z2])).chunk(2)
    sg = (lambda t: t.detach()) if stop_gradient else (lambda t: t)
    cos = torch.nn.functional.cosine_similarity
    by_hand = -(cos(p1, sg(z2)).mean() + cos(p2, sg(z1)).mean()) / 2
    torch.testing.assert_close(loss, by_hand, rtol=0, atol=16 * EPS)
    by_hand.backward()
    expected = _first_grad(method.backbone)
    scale = expected.abs().max().item()
    assert (got - expected).abs().max().item() <= 1e-4 * scale
    # and the other setting's gradient is measurably different, so the check can fail
    method.zero_grad()
    z = method.projector(method.backbone(torch.cat([x, x])))
    p = method.predictor(z)
    other = (lambda t: t) if stop_gradient else (lambda t: t.detach())
    (-(cos(p[:16], other(z[16:])).mean() + cos(p[16:], other(z[:16])).mean()) / 2).backward()
    assert (got - _first_grad(method.backbone)).abs().max().item() > 1e-2 * scale


def test_simsiam_loss_is_minus_the_cosine_and_logged_positive():
    torch.manual_seed(0)
    method = SimSiam(_cnn(), recipe=IDENTITY)
    loss, logs = method.training_step(_images())
    assert -1.0 <= loss.item() <= 1.0
    assert logs["cos_sim"] == pytest.approx(-loss.item())


# ----------------------------------------------------------------------------- DINO
def test_center_update_is_a_moving_average_of_the_mean_teacher_logit():
    center = torch.zeros(2)
    teacher = torch.tensor([[[0.0, 2.0], [2.0, 4.0]], [[1.0, 3.0], [1.0, 3.0]]])   # mean [1, 3]
    update_center_(center, teacher, momentum=0.9)
    torch.testing.assert_close(center, torch.tensor([0.1, 0.3]))
    update_center_(center, teacher, momentum=0.5)
    torch.testing.assert_close(center, torch.tensor([0.55, 1.65]))


class Spy:
    """A loss_fn that records what DINO passes to the loss, then calls the library's."""

    def __init__(self):
        self.calls = []

    def __call__(self, student, teacher, center, tau_s, tau_t):
        self.calls.append((student, teacher, center.clone(), tau_s, tau_t))
        return losses.dino_loss(student, teacher, center, tau_s, tau_t)


@pytest.mark.parametrize("centering", [True, False])
def test_dino_teacher_is_a_copy_that_sees_global_views_and_the_centre_moves(centering):
    torch.manual_seed(0)
    spy = Spy()
    method = DINO(_cnn(), num_prototypes=32, n_local=3, local_size=16, centering=centering,
                  recipe=IDENTITY, loss_fn=spy, center_momentum=0.8)
    loss, logs = method.training_step(_images(8))
    student, teacher, center, tau_s, tau_t = spy.calls[0]
    assert student.shape == (5, 8, 32) and teacher.shape == (2, 8, 32)
    assert (tau_s, tau_t) == (0.1, 0.04)
    assert student.requires_grad and not teacher.requires_grad
    # identical global views, teacher = copy of the student: the same logits, cosines in [-1, 1]
    torch.testing.assert_close(teacher, student[:2].detach(), rtol=0, atol=1e-5)
    assert teacher.abs().max() <= 1 + 1e-5
    assert torch.equal(center, torch.zeros(32))      # the first step's centre
    expected = 0.2 * teacher.mean(dim=(0, 1)) if centering else torch.zeros(32)
    torch.testing.assert_close(method.center, expected)
    assert 0 <= logs["teacher_entropy"] <= math.log(32) + 1e-4
    assert logs["teacher_entropy"] <= logs["teacher_mean_entropy"] + 1e-4   # Jensen


def test_dino_gradient_reaches_student_and_prototypes_and_never_the_teacher():
    torch.manual_seed(0)
    method = DINO(_cnn(), num_prototypes=32, n_local=2)
    loss, _ = method.training_step(_images(8))
    loss.backward()
    assert _first_grad(method.backbone).abs().sum() > 0
    assert method.head.prototypes.grad.abs().sum() > 0
    teacher = [*method.teacher_backbone.parameters(), *method.teacher_head.parameters()]
    assert all(not p.requires_grad and p.grad is None for p in teacher)


def test_dino_teacher_logs_tell_one_hot_from_uniform():
    # A teacher far colder than the spread of its logits is near one-hot (entropy ≈ 0); one far
    # warmer is near uniform (entropy ≈ log K).
    torch.manual_seed(0)
    cold = DINO(_cnn(), num_prototypes=16, n_local=0, teacher_temperature=1e-3)
    warm = DINO(_cnn(), num_prototypes=16, n_local=0, teacher_temperature=1e3)
    images = _images(8)
    assert cold.training_step(images)[1]["teacher_entropy"] < 0.2
    assert warm.training_step(images)[1]["teacher_entropy"] > math.log(16) - 1e-3


# ----------------------------------------------------------------------------- diagnostics
def test_collapse_logs_read_a_collapsed_and_a_spread_batch():
    g = torch.Generator().manual_seed(0)
    spread = torch.randn(512, 64, generator=g)
    collapsed = torch.randn(1, 64, generator=g).expand(512, 64) + 1e-6 * spread
    s, c = evaluate.collapse_logs(spread), evaluate.collapse_logs(collapsed)
    # Gaussian rows normalised: each coordinate has variance 1/D, so std ≈ 1/√D.
    assert s["z_std"] == pytest.approx(1 / math.sqrt(64), rel=0.1)
    assert c["z_std"] < 1e-5
    assert s["z_rank"] > 40 and c["z_rank"] < 1.01


# ----------------------------------------------------------------------------- arguments
@pytest.mark.parametrize("make, name", [
    (lambda: BYOL(_cnn(), predictor="deep"), "predictor"),
    (lambda: BYOL(_cnn(), momentum=1.0), "momentum"),
    (lambda: BYOL(_cnn(), momentum_schedule="linear"), "momentum_schedule"),
    (lambda: BYOL(_cnn(), pred_hidden=0), "pred_hidden"),
    (lambda: SimSiam(_cnn(), stop_gradient=1), "stop_gradient"),
    (lambda: SimSiam(_cnn(), proj_dim=0), "proj_dim"),
    (lambda: DINO(_cnn(), teacher_temperature=0.0), "teacher_temperature"),
    (lambda: DINO(_cnn(), student_temperature=-1.0), "student_temperature"),
    (lambda: DINO(_cnn(), centering="yes"), "centering"),
    (lambda: DINO(_cnn(), center_momentum=1.0), "center_momentum"),
    (lambda: DINO(_cnn(), num_prototypes=0), "num_prototypes"),
    (lambda: DINO(_cnn(), n_local=-1), "n_local"),
    (lambda: DINO(_cnn(), local_scale=(0.5, 0.2)), "local_scale"),
    (lambda: DINO(_cnn(), loss_fn="dino"), "loss_fn"),
])
def test_invalid_hyperparameters_name_the_parameter(make, name):
    with pytest.raises(ValueError, match=name):
        make()
