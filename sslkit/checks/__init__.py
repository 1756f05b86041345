"""Self-checks for the exercises: run the learner's function on seeded inputs, say what differs.

A learner calls ``checks.<name>(my_function)`` in an exercise notebook. The check runs the
function and the reference on a few named *cases* (seeded inputs, including edge cases such as a
batch of one, ties and large logits) and prints one line per case; on success it ends with
``"<name>: N public checks passed."``. These are public checks only (hidden tests grade the
exercise), so the message never claims that all tests passed. On the first difference it raises
:class:`CheckFailed` saying precisely what differs: the type, the shape, the dtype, the first
index where values differ (with both values), NaN/Inf, symmetry, or a gradient that does not
reach the inputs. A learner's ``NotImplementedError`` (the exercise stub) comes back as
``NotImplementedError("<name>: not implemented yet: ...")``, so an unsolved exercise raises only
``NotImplementedError``.

Layout: ``_core`` holds the framework (:func:`compare`, :func:`compare_call`,
:func:`check_symmetric`, :func:`check_gradient_flow`, :func:`run_checks`, :func:`randn`, the
helpers :func:`with_hint`, :func:`mistake_hint`, :func:`format_value`, :func:`unit_rows`,
:func:`detached_copy` and the worked example :func:`softmax`); one module ``exNN_<topic>`` per
exercise holds its checks (the ``exNN_`` prefix keeps them apart from the library modules they
check), and everything
public is re-exported here, so notebooks write ``from sslkit import checks; checks.nt_xent(fn)``:

- ``ex00_protocol`` (exercise 00): :func:`knn_classify`, :func:`label_efficiency`,
  :func:`knn_recorder` — *Unsupervised Feature Learning via Non-Parametric Instance
  Discrimination* (2018, arXiv 1805.01978), *Big Self-Supervised Models are Strong
  Semi-Supervised Learners* (2020, arXiv 2006.10029);
- ``ex01_theory`` (exercise 01): :func:`e_step`, :func:`m_step`, :func:`pretrain_then_erm` — EM
  (Dempster, Laird & Rubin, 1977), *On the Provable Advantage of Unsupervised Pretraining* (2023,
  arXiv 2303.01566);
- ``ex02_rotation`` (exercise 02): :func:`rotation_batch` — *Unsupervised Representation
  Learning by Predicting Image Rotations* (2018, arXiv 1803.07728);
- ``ex03_nt_xent`` (exercise 03): :func:`nt_xent` — *A Simple Framework for Contrastive
  Learning of Visual Representations* (2020, arXiv 2002.05709);
- ``ex04_moco`` (exercise 04): :func:`update_queue` and :func:`momentum_update` — *Momentum
  Contrast for Unsupervised Visual Representation Learning* (2019, arXiv 1911.05722);
- ``ex05_clustering`` (exercise 05): :func:`sinkhorn_knopp` and :func:`cluster_accuracy` —
  *Self-labelling via simultaneous clustering and representation learning* (2019, arXiv
  1911.05371), *Unsupervised Learning of Visual Features by Contrasting Cluster Assignments*
  (2020, arXiv 2006.09882), *SCAN: Learning to Classify Images without Labels* (2020, arXiv
  2005.12320);
- ``ex06_dino`` (exercise 06): :func:`dino_loss` and :func:`update_center` — *Emerging
  Properties in Self-Supervised Vision Transformers* (2021, arXiv 2104.14294);
- ``ex07_vicreg`` (exercise 07): :func:`variance`, :func:`covariance` and :func:`vicreg_loss` —
  *VICReg: Variance-Invariance-Covariance Regularization for Self-Supervised Learning* (2021,
  arXiv 2105.04906);
- ``ex08_masking`` (exercise 08): :func:`patchify`, :func:`unpatchify` and
  :func:`random_masking` — *Masked Autoencoders Are Scalable Vision Learners* (2021, arXiv
  2111.06377).

Private helpers stay in their module: tests import them from there
(``from sslkit.checks.ex03_nt_xent import _nt_xent_variant``), never through this package.

Adding a check for a new exercise: one public function per exercise, named after it, built from
the helpers of ``_core``, in the exercise's module ``exNN_<topic>`` (re-exported here). Its
docstring says ``Cases (N):`` and lists them; the exercise tests read N there, so adding a case
means editing that docstring, not the tests. For example::

    def knn_classify(learner_fn):
        \"\"\"Check ``learner_fn(train_z, train_y, query_z, k)`` against the library's.\"\"\"
        from sslkit import evaluate
        z, y = randn(20, 8, seed=0), torch.arange(20) % 4
        run_checks("knn_classify", {
            "random features, k=5": lambda: compare_call(
                learner_fn, evaluate.knn_classify, z, y, randn(6, 8, seed=1), 5),
            "a query of one": ...,
        })

:func:`softmax` is the worked example.
"""

from __future__ import annotations

from ._core import (
    CheckFailed,
    check_gradient_flow,
    check_symmetric,
    compare,
    compare_call,
    detached_copy,
    format_value,
    mistake_hint,
    randn,
    run_checks,
    softmax,
    unit_rows,
    with_hint,
)
from .ex00_protocol import KnnCall, knn_classify, knn_recorder, label_efficiency
from .ex01_theory import e_step, m_step, pretrain_then_erm
from .ex02_rotation import rotation_batch
from .ex03_nt_xent import nt_xent
from .ex04_moco import momentum_update, update_queue
from .ex05_clustering import cluster_accuracy, sinkhorn_knopp
from .ex06_dino import dino_loss, update_center
from .ex07_vicreg import covariance, variance, vicreg_loss
from .ex08_masking import patchify, random_masking, unpatchify

__all__ = [
    # the framework (_core)
    "CheckFailed", "compare", "compare_call", "check_symmetric", "check_gradient_flow",
    "run_checks", "randn", "softmax",
    "with_hint", "mistake_hint", "format_value", "unit_rows", "detached_copy",
    # exercise 00 (ex00_protocol)
    "knn_classify", "label_efficiency", "knn_recorder", "KnnCall",
    # exercise 01 (ex01_theory)
    "e_step", "m_step", "pretrain_then_erm",
    # exercise 02 (ex02_rotation)
    "rotation_batch",
    # exercise 03 (ex03_nt_xent)
    "nt_xent",
    # exercise 04 (ex04_moco)
    "update_queue", "momentum_update",
    # exercise 05 (ex05_clustering)
    "sinkhorn_knopp", "cluster_accuracy",
    # exercise 06 (ex06_dino)
    "dino_loss", "update_center",
    # exercise 07 (ex07_vicreg)
    "variance", "covariance", "vicreg_loss",
    # exercise 08 (ex08_masking)
    "patchify", "unpatchify", "random_masking",
]
