"""Redundancy-reduction methods (Barlow Twins, VICReg, W-MSE): batch whitening checked against
its definition, and each method's loss wired to the library's loss on the right embeddings.

With the identity view both views of an image are the image itself, and BatchNorm over the
duplicated batch ``[x; x]`` has the statistics of ``x``: the method's embeddings are then the
embeddings of ``x`` computed directly, which the checks below rebuild by hand.
"""

from __future__ import annotations

import pytest
import torch
from test_self_distillation import IDENTITY, _cnn, _images  # identity view, small CNN, noise

from sslkit import losses, views
from sslkit.methods import WMSE, BarlowTwins, VICReg


def _direct_embedding(method, images):
    """The projections of the images themselves, by hand."""
    return method.projector(method.backbone(views.augment(images, IDENTITY)))


# ----------------------------------------------------------------------------- whitening
def test_whitened_batch_has_zero_mean_and_identity_covariance():
    g = torch.Generator().manual_seed(0)
    mixing = torch.eye(6) + 0.5 * torch.randn(6, 6, generator=g)      # correlated dimensions
    z = torch.randn(2048, 6, generator=g) @ mixing + 3.0
    w = losses.whiten(z, eps=1e-6)
    cov = torch.cov(w.T.double())
    # Exact up to eps / λ_min(Cov) (≈ 1e-5 here) and float32 rounding of a 6 × 6 factorisation.
    assert w.mean(0).abs().max() < 1e-4
    assert (cov - torch.eye(6, dtype=torch.float64)).abs().max() < 1e-3
    # Centring alone (a stub) would leave the mixing's correlations.
    assert (torch.cov((z - z.mean(0)).T) - torch.eye(6)).abs().max() > 0.3


def test_whitening_needs_more_rows_than_dimensions():
    with pytest.raises(ValueError, match="batch larger than 8"):
        losses.whiten(torch.randn(8, 8))


def test_wmse_of_identical_views_is_zero_and_of_independent_views_about_two():
    g = torch.Generator().manual_seed(0)
    z = torch.randn(256, 4, generator=g)
    assert losses.wmse_loss(z, z).item() < 1e-5
    other = torch.randn(256, 4, generator=g)
    assert 1.6 < losses.wmse_loss(z, other).item() < 2.4     # cosines of independent vectors ≈ 0


# ----------------------------------------------------------------------------- the methods
def test_vicreg_loss_is_the_library_loss_of_its_two_views():
    torch.manual_seed(0)
    method = VICReg(_cnn(), proj_dim=16, recipe=IDENTITY)
    images = _images(48)
    loss, logs = method.training_step(images)
    z = _direct_embedding(method, images)
    expected = losses.vicreg_loss(z, z)
    torch.testing.assert_close(loss, expected, rtol=1e-4, atol=1e-4)
    assert logs["invariance"] < 1e-8                                 # identical views
    torch.testing.assert_close(torch.tensor(logs["variance"]), losses.variance(z).detach(),
                               rtol=1e-4, atol=1e-5)


def test_vicreg_weights_switch_terms_off():
    torch.manual_seed(0)
    method = VICReg(_cnn(), proj_dim=16, sim_weight=0.0, var_weight=0.0, cov_weight=1.0,
                    recipe=IDENTITY)
    images = _images(48)
    loss, logs = method.training_step(images)
    torch.testing.assert_close(loss, torch.tensor(2 * logs["covariance"]), rtol=1e-4, atol=1e-6)


def test_barlow_twins_with_identical_views_has_a_unit_diagonal():
    torch.manual_seed(0)
    method = BarlowTwins(_cnn(), proj_dim=16, lambd=0.01, recipe=IDENTITY)
    images = _images(48)
    loss, logs = method.training_step(images)
    # C_ii = var / (var + 1e-5): within 1e-5 / var of 1 for every dimension of unit-scale z.
    assert logs["on_diagonal"] < 1e-6
    z = _direct_embedding(method, images)
    torch.testing.assert_close(loss, losses.barlow_twins_loss(z, z, 0.01), rtol=1e-4, atol=1e-5)
    assert logs["off_diagonal"] > 0


def test_wmse_with_identical_views_is_zero_and_needs_a_batch_larger_than_its_dimension():
    torch.manual_seed(0)
    method = WMSE(_cnn(), proj_dim=8, recipe=IDENTITY)
    loss, logs = method.training_step(_images(48))
    assert loss.item() < 1e-5 and logs["cos_sim"] > 1 - 1e-5
    with pytest.raises(ValueError, match="batch larger than 32"):
        WMSE(_cnn(), proj_dim=32).training_step(_images(16))


@pytest.mark.parametrize("make, name", [
    (lambda: VICReg(_cnn(), var_weight=-1.0), "var_weight"),
    (lambda: VICReg(_cnn(), proj_layers=0), "proj_layers"),
    (lambda: VICReg(_cnn(), loss_fn="vicreg"), "loss_fn"),
    (lambda: BarlowTwins(_cnn(), lambd=-0.1), "lambd"),
    (lambda: BarlowTwins(_cnn(), proj_dim=0), "proj_dim"),
    (lambda: WMSE(_cnn(), eps=0.0), "eps"),
])
def test_invalid_hyperparameters_name_the_parameter(make, name):
    with pytest.raises(ValueError, match=name):
        make()
