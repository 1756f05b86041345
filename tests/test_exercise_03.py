"""Exercise 03 (SimCLR's NT-Xent): its public check, its notebooks and its grading.

* ``checks.nt_xent`` passes correct answers (the solution's, an explicit loop over the anchors
  with ``logsumexp`` and the library's) and fails deliberately wrong ones (the self-similarity
  left in, no normalisation, no temperature or a multiplied one, one direction only, negatives
  from the other view only, an overflowing ``exp``), naming the case and the mistake;
* the generated exercise, executed unsolved, raises only ``NotImplementedError``; the solution
  executes without error (public and hidden tests pass, and Part D's SimCLR run with the
  answer's loss matches the run with the library's) and is stored executed, in order;
* one ``sslkit.grade`` run on submissions built from the exercise gives full points to the
  correct answers and none to the wrong ones.

The wrong answers are source strings: the same text is ``exec``-ed for the checks and pasted
into the answer cell of the submissions.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from notebook_helpers import (
    Exercise,
    assert_passed,
    by_id,
    failed_at,
    graded_errors,
    passed,
)

from sslkit import checks, losses
from sslkit.checks import CheckFailed
from sslkit.checks.ex03_nt_xent import _nt_xent_diagnosis, _nt_xent_variant

EX = Exercise("03_contrastive_simclr", {"torch": torch, "F": F, "math": math})
NAME = EX.name


def define(source):
    """The ``nt_xent`` of an answer (or of the solution's answer cell ``source``)."""
    return EX.define(source, "nt_xent")


# ---------------------------------------------------------------------------- answers
HEAD = "def nt_xent(z1, z2, temperature=0.5):\n"
LOOP = HEAD + """\
    # an independent formulation: one anchor at a time, logsumexp over every other view
    z = torch.cat([z1, z2])
    z = z / z.norm(dim=1, keepdim=True)
    n, b = z.shape[0], z1.shape[0]
    terms = []
    for a in range(n):
        others = torch.cat([z[:a], z[a + 1:]])
        terms.append(torch.logsumexp(others @ z[a] / temperature, dim=0)
                     - z[a] @ z[(a + b) % n] / temperature)
    return torch.stack(terms).mean()
"""


def masked(*, normalise="F.normalize(z, dim=1)", logits="z @ z.T / temperature",
           mask=True, anchors=":") -> str:
    """The solution's formulation with one step changed."""
    return HEAD + f"""\
    b = z1.shape[0]
    z = torch.cat([z1, z2])
    z = {normalise}
    logits = {logits}
    if {mask}:
        logits = logits.masked_fill(torch.eye(2 * b, dtype=torch.bool), float("-inf"))
    pair = torch.cat([torch.arange(b) + b, torch.arange(b)])
    return F.cross_entropy(logits[{anchors}], pair[{anchors}])
"""


NO_MASK = masked(mask=False)
NO_NORMALISATION = masked(normalise="z")
NO_TEMPERATURE = masked(logits="z @ z.T")
TIMES_TEMPERATURE = masked(logits="z @ z.T * temperature")
ONE_DIRECTION = masked(anchors=":b")
OTHER_VIEW_ONLY = HEAD + """\
    z1, z2 = F.normalize(z1, dim=1), F.normalize(z2, dim=1)
    logits = z1 @ z2.T / temperature
    target = torch.arange(z1.shape[0])
    return (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target)) / 2
"""
SUBTRACT_SELF = HEAD + """\
    b = z1.shape[0]
    z = F.normalize(torch.cat([z1, z2]), dim=1)
    e = (z @ z.T / temperature).exp()
    pair = torch.cat([torch.arange(b) + b, torch.arange(b)])
    positive = e[torch.arange(2 * b), pair]
    return -(positive / (e.sum(1) - e.diagonal())).log().mean()
"""
SUM = masked().replace("F.cross_entropy(logits[:], pair[:])",
                       "F.cross_entropy(logits, pair, reduction='sum')")


# ------------------------------------------------------------------------------- the check
@pytest.mark.parametrize("source", ["nt_xent_solution", LOOP, losses.nt_xent],
                         ids=["solution", "loop_logsumexp", "library"])
def test_correct_answers_pass_the_public_check(source, capsys):
    checks.nt_xent(define(source))
    assert_passed(checks.nt_xent, capsys.readouterr().out)


WRONG = [  # (source, the case that fails: number and name, words of the message)
    (NO_MASK, 1, "by hand", ["loss: got 0.820075, expected log(1 + 2·e^−2) = 0.239545",
                             "the self-similarity is not excluded", "masked_fill"]),
    (NO_NORMALISATION, 2, "random z (8, 16)",
     ["loss: values differ", "the inputs are not normalised", "F.normalize(z, dim=1)"]),
    (NO_TEMPERATURE, 1, "by hand", ["the temperature is not applied",
                                    "divide the cosine similarities by τ"]),
    (TIMES_TEMPERATURE, 1, "by hand", ["you multiplied the similarities by τ"]),
    (ONE_DIRECTION, 2, "random z (8, 16)",
     ["only the B views of z1 are anchors", "symmetric in z1 and z2"]),
    (OTHER_VIEW_ONLY, 1, "by hand",
     ["your negatives are only the B − 1 views of the other side", "2B − 2 other views"]),
    (SUM, 1, "by hand", ["the mean over the 2B anchors, not their sum"]),
    (SUBTRACT_SELF, 7, "τ=0.01 with nearly identical pairs",
     ["loss: got nan", "F.cross_entropy", "mask the diagonal with -inf"]),
]


@pytest.mark.parametrize("source, i, case, words", WRONG, ids=[
    "no_mask", "no_normalisation", "no_temperature", "times_temperature", "one_direction",
    "other_view_only", "sum", "subtract_self"])
def test_wrong_answers_fail_naming_the_case_and_the_mistake(source, i, case, words, capsys):
    with pytest.raises(CheckFailed) as info:
        checks.nt_xent(define(source))
    msg = str(info.value)
    assert msg.startswith(failed_at(checks.nt_xent, i, case)), msg
    for word in words:
        assert word in msg, (word, msg)
    assert "public checks passed" not in capsys.readouterr().out


def test_a_stub_gives_only_the_friendly_not_implemented_error():
    def stub(z1, z2, temperature=0.5):
        raise NotImplementedError("normalise the rows")

    with pytest.raises(NotImplementedError) as info:
        checks.nt_xent(stub)
    assert not isinstance(info.value, AssertionError)
    assert str(info.value) == "nt_xent: not implemented yet: normalise the rows"


def test_the_check_notices_inputs_modified_in_place_and_a_detached_loss():
    def in_place(z1, z2, temperature=0.5):
        z1 /= z1.norm(dim=1, keepdim=True)
        return losses.nt_xent(z1, z2, temperature)

    with pytest.raises(CheckFailed, match="modified z1 or z2 in place"):
        checks.nt_xent(in_place)
    with pytest.raises(CheckFailed) as info:
        checks.nt_xent(lambda z1, z2, t=0.5: losses.nt_xent(z1, z2, t).detach())
    assert str(info.value).startswith(failed_at(checks.nt_xent, 11, "gradient flows")), info.value
    assert "cut off" in str(info.value)


def test_the_unmasked_variant_of_each_mistake_is_the_library_loss():
    """The diagnosis compares with variants of one float64 formula; its default is the loss."""
    z1, z2 = checks.randn(6, 5, seed=1) * 3, checks.randn(6, 5, seed=2)
    b, d, eps = 6, 5, torch.finfo(torch.float32).eps
    for tau in (0.05, 0.5):
        # The library is float32: cosines err by ≤ (d + 2)·EPS, logits by that / τ, the
        # log-softmax (Lipschitz 2) and its sum over 2B − 1 keys add ≤ (2B + 3)·EPS; ×2 margin.
        tol = 2 * (2 * (d + 2) / tau + 2 * b + 3) * eps
        assert math.isclose(_nt_xent_variant(z1, z2, tau), losses.nt_xent(z1, z2, tau).item(),
                            rel_tol=0, abs_tol=tol)
    assert _nt_xent_variant(z1[:1], z2[:1], 0.5) == 0.0


def test_a_value_no_mistake_explains_gets_the_general_hint():
    z1, z2 = checks.randn(4, 3, seed=3), checks.randn(4, 3, seed=4)
    hint = _nt_xent_diagnosis(123.0, z1, z2, 0.5)
    assert hint.startswith("for each of the 2B views a")


# ---------------------------------------------------------------------------- the notebooks
def test_the_unsolved_exercise_raises_only_not_implemented_error(tmp_path):
    nb, errors, checked = EX.run_unsolved(tmp_path)
    # the hand-computed example, the public check, the graded cell, Part B's table and Part D's
    # training run with the learner's loss
    assert len(errors) == 5, errors
    assert checked[0].startswith("nt_xent: not implemented yet: the (2B, 2B) cosine "
                                 "similarities")
    assert by_id(nb, "temperature_answer").source == "YOUR ANSWER HERE"


def test_the_solution_passes_every_public_and_hidden_test(tmp_path):
    _, outputs = EX.run_solution(tmp_path)
    for line in (passed(checks.nt_xent),
                 "by hand: 0.2395 | yours: 0.2395 | library: 0.2395",
                 "collapsed                   2.708    2.708    2.708    2.708    2.708",
                 "(they agree)"):      # Part D: SimCLR trained with the answer and the library
        assert line in outputs, line


def test_the_solution_is_stored_executed_in_order_without_errors():
    code = EX.check_stored_executed({"nt_xent_tests": 4, "temperature_answer": 2})
    assert "torch.set_num_threads(1)" in code[0].source


# ---------------------------------------------------------------------------- grading
SUBMISSIONS = {  # learner → nt_xent answer; None: the solution's answer
    "correct": None,
    "correct_alternative": LOOP,
    "no_mask": NO_MASK,
    "no_normalisation": NO_NORMALISATION,
    "no_temperature": NO_TEMPERATURE,
}


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    return EX.grade(tmp_path_factory.mktemp("grading_03"), {
        learner: {"nt_xent_solution": source,
                  "temperature_answer": "Collapse gives log(2B - 1): negatives."}
        for learner, source in SUBMISSIONS.items()})


def test_grading_gives_full_points_to_the_correct_answers_and_none_to_the_wrong_ones(graded):
    status, rows, printed, _ = graded
    assert status == 0, printed
    assert rows[0] == ["learner", "exercise", "cell", "points", "max_points", "flags"]
    expected = []
    for learner in sorted(SUBMISSIONS):
        right = learner.startswith("correct")
        # a wrong answer also fails its public check cell and Part B's closed forms: "failed_check"
        expected.append([learner, NAME, "nt_xent_tests", "4" if right else "0", "4",
                         "" if right else "failed_check"])
    assert rows[1:] == expected, printed


@pytest.mark.parametrize("learner, error", [
    ("no_mask", "AssertionError"),                    # the hand-computed case, visible
    ("no_normalisation", "AssertionError: B=5, D=8, τ=0.5: "),   # hidden: inputs of length 3
    ("no_temperature", "AssertionError"),
])
def test_each_wrong_answer_fails_its_graded_cell_and_its_public_check(graded, learner, error):
    got, check_errors = graded_errors(graded[3], learner, "nt_xent_tests", "nt_xent")
    assert got.startswith(error), got
    assert check_errors == ["CheckFailed"]
