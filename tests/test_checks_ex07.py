"""The public checks of exercise 07 (VICReg's variance and covariance terms and the whole loss):
correct answers pass (the library's and an independent formulation written with loops over the
dimensions), deliberately wrong ones fail and the message names the mistake.

The answers are source strings ``exec``-ed here, as the other exercise tests do, so that the same
text can be pasted into an exercise notebook's answer cells.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from sslkit import checks, losses
from sslkit.checks import CheckFailed

VARIANCE_LOOPS = """\
def variance(z, gamma=1.0, eps=1e-4):
    # an independent formulation: one dimension at a time, the unbiased variance written out
    b, d = z.shape
    total = 0.0
    for j in range(d):
        col = z[:, j]
        var = ((col - col.mean()) ** 2).sum() / (b - 1)
        total = total + torch.clamp(gamma - torch.sqrt(var + eps), min=0.0)
    return total / d
"""
VARIANCE_WRONG = {
    "hinge is on the variance": VARIANCE_LOOPS.replace("torch.sqrt(var + eps)", "var"),
    "biased variance": VARIANCE_LOOPS.replace("/ (b - 1)", "/ b"),
    "inside the square root": VARIANCE_LOOPS.replace("torch.sqrt(var + eps)",
                                                     "(torch.sqrt(var) + eps)"),
    "no hinge": VARIANCE_LOOPS.replace("torch.clamp(gamma - torch.sqrt(var + eps), min=0.0)",
                                       "(gamma - torch.sqrt(var + eps))"),
    "summed over the dimensions": VARIANCE_LOOPS.replace("return total / d", "return total"),
}
COVARIANCE_LOOPS = """\
def covariance(z):
    # an independent formulation: every pair of different dimensions, one at a time
    b, d = z.shape
    zc = z - z.mean(dim=0)
    total = 0.0
    for i in range(d):
        for j in range(d):
            if i != j:
                total = total + ((zc[:, i] * zc[:, j]).sum() / (b - 1)) ** 2
    return total / d + 0.0 * z.sum()
"""
COVARIANCE_WRONG = {
    "not centred": COVARIANCE_LOOPS.replace("zc = z - z.mean(dim=0)", "zc = z"),
    "divided by B": COVARIANCE_LOOPS.replace("/ (b - 1)", "/ b"),
    "kept the diagonal": COVARIANCE_LOOPS.replace("if i != j:", "if True:"),
    "did not divide by D": COVARIANCE_LOOPS.replace("total / d", "total"),
    "summed absolute values": COVARIANCE_LOOPS.replace(") ** 2", ").abs()"),
}
LOSS_RIGHT = """\
def vicreg_loss(z1, z2, sim_weight=25.0, var_weight=25.0, cov_weight=1.0):
    invariance = ((z1 - z2) ** 2).mean()
    return (sim_weight * invariance
            + var_weight * (losses.variance(z1) + losses.variance(z2))
            + cov_weight * (losses.covariance(z1) + losses.covariance(z2)))
"""
LOSS_WRONG = {
    "invariance sums over the dimensions": LOSS_RIGHT.replace(
        "((z1 - z2) ** 2).mean()", "((z1 - z2) ** 2).sum(1).mean()"),
    "computed for each view": LOSS_RIGHT.replace("losses.variance(z2)", "losses.variance(z1)"
                                                 ).replace("covariance(z2)", "covariance(z1)"),
    "averaged the two views": LOSS_RIGHT.replace(
        "(losses.variance(z1) + losses.variance(z2))",
        "(losses.variance(z1) + losses.variance(z2)) / 2").replace(
        "(losses.covariance(z1) + losses.covariance(z2))",
        "(losses.covariance(z1) + losses.covariance(z2)) / 2"),
    "weights are swapped": LOSS_RIGHT.replace("sim_weight * invariance", "TMP").replace(
        "var_weight * (", "sim_weight * (").replace("TMP", "var_weight * invariance"),
}


def _fn(source: str, name: str):
    scope = {"torch": torch, "F": F, "losses": losses}
    exec(source, scope)
    return scope[name]


@pytest.mark.parametrize("fn", [losses.variance, _fn(VARIANCE_LOOPS, "variance")],
                         ids=["library", "loops"])
def test_correct_variance_terms_pass(fn, capsys):
    checks.variance(fn)
    assert "variance: 6 public checks passed." in capsys.readouterr().out


@pytest.mark.parametrize("mistake", VARIANCE_WRONG)
def test_wrong_variance_terms_fail_naming_the_mistake(mistake):
    with pytest.raises(CheckFailed, match=mistake):
        checks.variance(_fn(VARIANCE_WRONG[mistake], "variance"))


def test_a_variance_without_eps_fails_on_the_collapsed_batch():
    source = VARIANCE_LOOPS.replace("torch.sqrt(var + eps)", "torch.sqrt(var)")
    with pytest.raises(CheckFailed, match="forgot ε"):
        checks.variance(_fn(source, "variance"))


@pytest.mark.parametrize("fn", [losses.covariance, _fn(COVARIANCE_LOOPS, "covariance")],
                         ids=["library", "loops"])
def test_correct_covariance_terms_pass(fn, capsys):
    checks.covariance(fn)
    assert "covariance: 6 public checks passed." in capsys.readouterr().out


@pytest.mark.parametrize("mistake", COVARIANCE_WRONG)
def test_wrong_covariance_terms_fail_naming_the_mistake(mistake):
    with pytest.raises(CheckFailed, match=mistake):
        checks.covariance(_fn(COVARIANCE_WRONG[mistake], "covariance"))


@pytest.mark.parametrize("fn", [losses.vicreg_loss, _fn(LOSS_RIGHT, "vicreg_loss")],
                         ids=["library", "written"])
def test_correct_losses_pass(fn, capsys):
    checks.vicreg_loss(fn)
    assert "vicreg_loss: 6 public checks passed." in capsys.readouterr().out


@pytest.mark.parametrize("mistake", LOSS_WRONG)
def test_wrong_losses_fail_naming_the_mistake(mistake):
    with pytest.raises(CheckFailed, match=mistake):
        checks.vicreg_loss(_fn(LOSS_WRONG[mistake], "vicreg_loss"))


def test_a_detached_loss_fails_on_the_gradient_case():
    source = LOSS_RIGHT.replace("return (", "return ((").replace(
        "losses.covariance(z2)))", "losses.covariance(z2)))).detach()")
    with pytest.raises(CheckFailed, match="gradient reaches both views"):
        checks.vicreg_loss(_fn(source, "vicreg_loss"))


def test_a_stub_raises_only_not_implemented():
    def stub(*args):
        raise NotImplementedError("write the term")
    for check in (checks.variance, checks.covariance, checks.vicreg_loss):
        with pytest.raises(NotImplementedError):
            check(stub)
