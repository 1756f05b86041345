"""Theory toys: why unlabeled data helps, and how deep linear networks learn.

Two small, exactly analysable worlds behind lecture 01, one module each (this package
re-exports every public name, so ``sslkit.theory.fit_em`` and friends work as before).

**1. Pretraining on a latent-variable model** (:mod:`.mixture`, :mod:`.erm`, :mod:`.risk`).
*On the Provable Advantage of Unsupervised Pretraining* (2023, arXiv 2303.01566) studies a
two-stage learner: fit a latent-variable model by maximum likelihood on ``m`` unlabeled points
(the representation ``φ``), then fit a small predictor ``ψ`` on top of ``φ`` by empirical risk
minimisation (ERM) on ``n`` labeled points. It compares it with ERM over the composite class
``ψ∘φ`` on the ``n`` labels alone. Here:

- the latent-variable model is a mixture of ``K`` spherical Gaussians in ``d`` dimensions with
  one shared variance (:class:`GaussianMixture`), fit by EM (:func:`e_step`, :func:`m_step`,
  :func:`fit_em`);
- ``φ(x)`` is the posterior over the ``K`` components (:func:`log_posterior`); ``ψ`` is a
  multinomial logistic regression on the ``K`` log-posteriors, or a vote that names each
  component's class (:func:`pretrain_then_erm`, :func:`fit_vote_head`);
- the supervised baseline is the same logistic regression on the raw ``x``
  (:func:`supervised_erm`). With a shared variance, the posterior's logits are *linear* in ``x``,
  so ``ψ∘φ`` is exactly a logistic regression on ``x``: both learners search the same function
  class, and only the pretrained one had help choosing ``d·K`` of its parameters;
- the label comes from a :class:`Problem`: ``task="latent"`` labels each point by its component
  (the informative case), ``task="orthogonal"`` by a direction orthogonal to every cluster mean
  (the uninformative case, where pretraining cannot help);
- :func:`excess_risk` measures the error above the Bayes error, exactly in expectation over the
  label given each test point; :func:`excess_risk_curves` sweeps ``m``, ``n`` and seeded trials.

Everything is batched: a leading ``(T,)`` axis holds independent trials, so one call of
:func:`fit_em` fits ``T`` mixtures at once.

**2. Deep linear networks** (:mod:`.deep_linear`). *Exact solutions to the nonlinear
dynamics of learning in deep linear neural networks* (2013, arXiv 1312.6120): a two-layer linear
network trained by gradient descent from a small initialisation learns the singular modes of the
input-output correlation one at a time, each along a sigmoid whose timescale is ``1/s``
(:func:`deep_linear_dynamics`, :func:`mode_strength_closed_form`).
"""

from __future__ import annotations

from .deep_linear import deep_linear_dynamics, mode_strength_closed_form
from .erm import HEADS as HEADS
from .erm import (
    LogisticModel,
    PretrainedClassifier,
    VoteHead,
    fit_logistic,
    fit_vote_head,
    pretrain_then_erm,
    supervised_erm,
)
from .mixture import TASKS as TASKS
from .mixture import (
    EMResult,
    GaussianMixture,
    Problem,
    e_step,
    fit_em,
    log_joint,
    log_posterior,
    m_step,
    make_problem,
)
from .mixture import _kmeans_pp as _kmeans_pp  # old private name (k-means++ is sslkit.cluster's)
from .risk import LOSSES as LOSSES
from .risk import bayes_risk, excess_risk, excess_risk_curves, fit_rate_constants

__all__ = [
    "GaussianMixture", "Problem", "make_problem", "log_joint", "log_posterior", "e_step", "m_step",
    "EMResult", "fit_em", "LogisticModel", "fit_logistic", "VoteHead", "fit_vote_head",
    "PretrainedClassifier", "pretrain_then_erm", "supervised_erm", "excess_risk", "bayes_risk",
    "excess_risk_curves", "fit_rate_constants", "deep_linear_dynamics",
    "mode_strength_closed_form",
]
