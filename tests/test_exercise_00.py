"""Exercise 00 (the evaluation protocol): its public checks, its notebooks and its grading.

* ``checks.knn_classify`` and ``checks.label_efficiency`` pass correct answers (the solution's and
  independent formulations) and fail deliberately wrong ones, naming the case and giving a hint;
* the generated exercise, executed unsolved, raises only ``NotImplementedError``; the solution
  executes without error (public and hidden tests pass) and is stored executed, in order;
* one ``sslkit.grade`` run on a folder of submissions built from the exercise (the solution's
  answers, other correct formulations, two wrong kNNs, two wrong sweeps) gives full points to the
  correct ones and takes the points of exactly the cell whose answer is wrong.

The wrong answers are source strings: the same text is ``exec``-ed for the checks and pasted
into the answer cells of the submissions.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from notebook_helpers import (
    Exercise,
    assert_passed,
    failed_at,
    graded_errors,
    passed,
)

from sslkit import checks, evaluate
from sslkit.checks import CheckFailed
from sslkit.checks.ex00_protocol import _knn_cases

EX = Exercise("00_tour_and_protocol", {"torch": torch, "F": F})
NAME = EX.name


def knn(source):
    """The ``knn_classify`` of an answer (or of the solution's answer cell ``source``)."""
    return EX.define(source, "knn_classify")


def sweep(source):
    """The ``label_efficiency_sweep`` of an answer; it calls the solution's ``knn_classify``."""
    return EX.define(source, "label_efficiency_sweep", context=EX.answer("knn_solution"))


# ---------------------------------------------------------------------------- answers
KNN_HEAD = ("def knn_classify(train_features, train_labels, test_features, k, temperature, "
            "num_classes):\n")
KNN_VOTE = """\
    votes = torch.zeros(test.shape[0], num_classes)
    votes.scatter_add_(1, train_labels[idx], weights)
    return votes.argmax(dim=1)
"""
KNN_LOOP = KNN_HEAD + """\
    # an independent formulation: cosine_similarity, argsort, one-hot sums, one query at a time
    preds = []
    for q in test_features:
        s = F.cosine_similarity(q[None], train_features, dim=1)
        top = torch.argsort(s, descending=True)[:k]
        w = torch.exp((s[top] - s[top].max()) / temperature)
        preds.append((F.one_hot(train_labels[top], num_classes) * w[:, None]).sum(0).argmax())
    return torch.stack(preds)
"""
KNN_NO_NORMALISATION = KNN_HEAD + """\
    test = test_features
    sims, idx = (test @ train_features.T).topk(min(k, len(train_features)), dim=1)
    weights = ((sims - sims[:, :1]) / temperature).exp()
""" + KNN_VOTE
KNN_SETUP = """\
    train = F.normalize(train_features, dim=1)
    test = F.normalize(test_features, dim=1)
"""
KNN_OFF_BY_ONE = KNN_HEAD + KNN_SETUP + """\
    sims, idx = (test @ train.T).topk(min(k + 1, len(train)), dim=1)
    weights = ((sims - sims[:, :1]) / temperature).exp()
""" + KNN_VOTE
KNN_UNWEIGHTED = KNN_HEAD + KNN_SETUP + """\
    sims, idx = (test @ train.T).topk(min(k, len(train)), dim=1)
    weights = torch.ones_like(sims)
""" + KNN_VOTE
KNN_OVERFLOWS = KNN_HEAD + KNN_SETUP + """\
    sims, idx = (test @ train.T).topk(min(k, len(train)), dim=1)
    weights = (sims / temperature).exp()
""" + KNN_VOTE
KNN_NOT_CLIPPED = KNN_HEAD + KNN_SETUP + """\
    sims, idx = (test @ train.T).topk(k, dim=1)
    weights = ((sims - sims[:, :1]) / temperature).exp()
""" + KNN_VOTE
KNN_LAST_TIE = KNN_HEAD + KNN_SETUP + """\
    sims, idx = (test @ train.T).topk(min(k, len(train)), dim=1)
    weights = ((sims - sims[:, :1]) / temperature).exp()
    votes = torch.zeros(test.shape[0], num_classes)
    votes.scatter_add_(1, train_labels[idx], weights)
    return num_classes - 1 - votes.flip(1).argmax(dim=1)
"""

SWEEP_HEAD = """\
def label_efficiency_sweep(train_features, train_labels, test_features, test_labels,
                           labels_per_class=(1, 5, 20), seed=0):
    num_classes = int(train_labels.max()) + 1
    generator = torch.Generator().manual_seed(seed)
"""
SWEEP_LOOP = """\
        pred = knn_classify(train_features[subset], train_labels[subset], test_features,
                            min(20, len(subset)), 0.07, num_classes)
        accuracies[n] = (pred == test_labels).float().mean().item()
    return accuracies
"""
SWEEP_ORDERS = """\
    orders = [(train_labels == c).nonzero().squeeze(1) for c in range(num_classes)]
    orders = [i[torch.randperm(len(i), generator=generator)] for i in orders]
"""
SWEEP_SORTED_K20 = SWEEP_HEAD + SWEEP_ORDERS + """\
    accuracies = {}
    for n in labels_per_class:  # correct: sorted subsets, k=20 left to clipping, 0-dim tensors
        subset = (torch.arange(len(train_labels)) if n is None
                  else torch.cat([o[:n] for o in orders]).sort().values)
        pred = knn_classify(train_features[subset], train_labels[subset], test_features,
                            k=20, temperature=0.07, num_classes=num_classes)
        accuracies[n] = (pred == test_labels).float().mean()
    return accuracies
"""
SWEEP_NOT_NESTED = SWEEP_HEAD + """\
    accuracies = {}
    for n in labels_per_class:  # a fresh draw for every n
        subset = torch.arange(len(train_labels)) if n is None else torch.cat([
            i[torch.randperm(len(i), generator=generator)][:n]
            for i in [(train_labels == c).nonzero().squeeze(1) for c in range(num_classes)]])
""" + SWEEP_LOOP
SWEEP_UNBALANCED = SWEEP_HEAD + """\
    order = torch.randperm(len(train_labels), generator=generator)  # all classes mixed
    accuracies = {}
    for n in labels_per_class:
        subset = order if n is None else order[: n * num_classes]
""" + SWEEP_LOOP
SWEEP_FIRST_N = SWEEP_HEAD + """\
    accuracies = {}
    for n in labels_per_class:  # nested and balanced, but not drawn at random
        subset = torch.arange(len(train_labels)) if n is None else torch.cat([
            (train_labels == c).nonzero().squeeze(1)[:n] for c in range(num_classes)])
""" + SWEEP_LOOP
SWEEP_WRONG_K = SWEEP_HEAD + SWEEP_ORDERS + """\
    accuracies = {}
    for n in labels_per_class:
        subset = (torch.arange(len(train_labels)) if n is None
                  else torch.cat([o[:n] for o in orders]))
        pred = knn_classify(train_features[subset], train_labels[subset], test_features,
                            n or 20, 0.07, num_classes)
        accuracies[n] = (pred == test_labels).float().mean().item()
    return accuracies
"""
SWEEP_LIBRARY = """\
def label_efficiency_sweep(train_features, train_labels, test_features, test_labels,
                           labels_per_class=(1, 5, 20), seed=0):
    from sslkit import evaluate
    table = evaluate.label_efficiency(train_features, train_labels, test_features, test_labels,
                                      labels_per_class=labels_per_class, method="knn", k=20,
                                      temperature=0.07, seed=seed)
    return dict(zip(labels_per_class, table["accuracy"].tolist()))
"""


# -------------------------------------------------------------------------- checks.knn_classify
@pytest.mark.parametrize("source", ["knn_solution", KNN_LOOP], ids=["solution", "loop"])
def test_correct_knn_passes_the_public_checks(source, capsys):
    checks.knn_classify(knn(source))
    assert_passed(checks.knn_classify, capsys.readouterr().out)


@pytest.mark.parametrize("source, i, case, hint", [
    (KNN_NO_NORMALISATION, 4, "features of very different lengths", "L2 norm"),
    (KNN_UNWEIGHTED, 1, "random unit-length features", "adds exp(s / T)"),
    (KNN_OFF_BY_ONE, 6, "exactly k neighbours vote", "not k+1 or k-1"),
    (KNN_OVERFLOWS, 7, "T=0.01", "subtract each query's largest similarity"),
    (KNN_LAST_TIE, 9, "ties", "smallest class index"),
    (KNN_NOT_CLIPPED, 10, "k=50 > N=12", "use min(k, N)"),
], ids=["no_normalisation", "unweighted", "off_by_one", "overflows", "last_tie", "not_clipped"])
def test_wrong_knn_fails_naming_the_case_the_difference_and_a_hint(source, i, case, hint,
                                                                   capsys):
    with pytest.raises(CheckFailed) as info:
        checks.knn_classify(knn(source))
    msg = str(info.value)
    assert msg.startswith(failed_at(checks.knn_classify, i, case)), msg
    assert "Hint: " in msg and hint in msg, msg
    if source is not KNN_NOT_CLIPPED:  # that one crashes: "your code raised RuntimeError: ..."
        assert "predictions: values differ at" in msg and "first at index (" in msg, msg
        assert ", expected " in msg, msg
    assert "public checks passed" not in capsys.readouterr().out


def test_the_first_differing_query_is_reported_with_both_predictions():
    wrong = knn(KNN_NO_NORMALISATION)
    args, _ = _knn_cases()[next(n for n in _knn_cases() if "lengths" in n)]
    got, want = wrong(*args), evaluate.knn_classify(*args[:3], k=args[3], temperature=args[4],
                                                    num_classes=args[5])
    first = int((got != want).nonzero()[0])
    with pytest.raises(CheckFailed) as info:
        checks.knn_classify(wrong)
    assert (f"values differ at {int((got != want).sum())} of {len(want)} positions; first at "
            f"index ({first},): got {int(got[first])}, expected {int(want[first])}"
            ) in str(info.value)


def test_the_knn_stub_gives_only_the_friendly_not_implemented_error():
    def stub(*args):
        raise NotImplementedError("normalise the rows")

    with pytest.raises(NotImplementedError) as info:
        checks.knn_classify(stub)
    assert not isinstance(info.value, AssertionError)
    assert str(info.value) == "knn_classify: not implemented yet: normalise the rows"


def test_every_knn_case_has_a_clear_winner_or_an_exact_tie():
    """Exact prediction comparisons are safe only if float rounding cannot flip a vote."""
    for name, (args, _) in _knn_cases().items():
        train, labels, test, k, temperature, num_classes = args
        _, votes = evaluate.knn_classify(train, labels, test, k=k, temperature=temperature,
                                         num_classes=num_classes, return_votes=True)
        top2 = votes.topk(2, dim=1).values
        margin = ((top2[:, 0] - top2[:, 1]) / top2[:, 0]).min().item()
        # A vote Σ exp(cos / T) over k neighbours: each float32 cosine errs by ≤ (d + 2)·EPS, so
        # each weight by that / T (relative), and the sum adds (k + 3)·EPS / 2; the learner's and
        # the reference's votes may each be off by that much.
        d, eps = train.shape[1], torch.finfo(torch.float32).eps
        flip = 2 * ((d + 2) * eps / temperature + (k + 3) * eps / 2)
        assert margin == 0.0 if name.startswith("ties") else margin > flip, (name, margin)


# ---------------------------------------------------------------------- checks.label_efficiency
@pytest.mark.parametrize("source", ["sweep_solution", SWEEP_SORTED_K20],
                         ids=["solution", "sorted_k20"])
def test_correct_sweep_passes_the_public_checks(source, capsys):
    checks.label_efficiency(sweep(source))
    assert_passed(checks.label_efficiency, capsys.readouterr().out)


@pytest.mark.parametrize("source, i, case, detail", [
    (SWEEP_NOT_NESTED, 4, "nested subsets", "is in the 1-label subset but not in the "
                                            "3-label subset"),
    (SWEEP_UNBALANCED, 3, "class balance", "examples of classes 0..3, expected 1 of each"),
    (SWEEP_FIRST_N, 5, "the reference's seeded draw", "the reference draws"),
    (SWEEP_WRONG_K, 2, "one knn_classify call per n", "used k=1 with 4 training examples"),
    (SWEEP_LIBRARY, 2, "one knn_classify call per n", "knn_classify was never called"),
], ids=["not_nested", "unbalanced", "first_n", "wrong_k", "library_shortcut"])
def test_wrong_sweep_fails_naming_the_case_and_what_is_wrong(source, i, case, detail):
    with pytest.raises(CheckFailed) as info:
        checks.label_efficiency(sweep(source))
    assert str(info.value).startswith(failed_at(checks.label_efficiency, i, case)), info.value
    assert detail in str(info.value), str(info.value)


def test_the_recorder_swaps_in_the_library_knn_and_always_restores_the_learners():
    fn = sweep("sweep_solution")
    mine = fn.__globals__["knn_classify"]
    x, y = checks.randn(12, 4, seed=0), torch.arange(12) % 3
    with checks.knn_recorder(fn, x, y) as calls:
        result = fn(x, y, x[:5], y[:5], labels_per_class=(2, None), seed=1)
    assert fn.__globals__["knn_classify"] is mine
    assert [c.n_train for c in calls] == [6, 12] and all(c.labels_match for c in calls)
    assert calls[1].indices.tolist() == list(range(12))
    assert [(c.k, c.temperature, c.num_classes) for c in calls] == [(6, 0.07, 3), (12, 0.07, 3)]
    assert set(result) == {2, None}
    with pytest.raises(ZeroDivisionError), checks.knn_recorder(fn, x, y):
        raise ZeroDivisionError
    assert fn.__globals__["knn_classify"] is mine
    del fn.__globals__["knn_classify"]
    with checks.knn_recorder(fn, x, y):
        assert "knn_classify" in fn.__globals__
    assert "knn_classify" not in fn.__globals__


# ---------------------------------------------------------------------------- the notebooks
def test_the_unsolved_exercise_raises_only_not_implemented_error(tmp_path):
    _, errors, checked = EX.run_unsolved(tmp_path)
    # the toy example, both public checks, both graded cells and the final plot
    assert len(errors) == 6, errors
    assert [e.split(":")[0] for e in checked] == ["knn_classify", "label_efficiency"]
    assert checked[0].startswith("knn_classify: not implemented yet: let the k most similar")


def test_the_solution_passes_every_public_and_hidden_test(tmp_path):
    nb, outputs = EX.run_solution(tmp_path)
    assert passed(checks.knn_classify) in outputs
    assert passed(checks.label_efficiency) in outputs
    assert "T = 0.1  -> class 1\nT = 10.0 -> class 0" in outputs
    assert any("image/png" in o.get("data", {}) for o in nb.cells[-1].outputs)


def test_the_solution_is_stored_executed_in_order_without_errors():
    EX.check_stored_executed({"knn_tests": 3, "sweep_tests": 2, "protocol_answer": 1})


# ---------------------------------------------------------------------------- grading
SUBMISSIONS = {  # learner → (knn answer, sweep answer); None: the solution's answer
    "correct": (None, None),
    "correct_alternative": (KNN_LOOP, SWEEP_SORTED_K20),  # other formulations, also right
    "knn_no_normalisation": (KNN_NO_NORMALISATION, None),
    "knn_off_by_one": (KNN_OFF_BY_ONE, None),
    "sweep_not_nested": (None, SWEEP_NOT_NESTED),
    "sweep_unbalanced": (None, SWEEP_UNBALANCED),
}


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    return EX.grade(tmp_path_factory.mktemp("grading_00"), {
        learner: {"knn_solution": knn_answer, "sweep_solution": sweep_answer,
                  "protocol_answer": "Selecting on test biases the estimate upwards."}
        for learner, (knn_answer, sweep_answer) in SUBMISSIONS.items()})


def test_grading_gives_full_points_to_the_correct_answer_and_takes_the_wrong_cells(graded):
    status, rows, printed, _ = graded
    assert status == 0, printed
    assert rows[0] == ["learner", "exercise", "cell", "points", "max_points", "flags"]
    # a wrong answer fails its own public check cell (flag "failed_check") and loses the points
    # of its graded cell only: the sweep's tests use the library's kNN, whatever Part A does
    expected = [
        ["correct", NAME, "knn_tests", "3", "3", ""],
        ["correct", NAME, "sweep_tests", "2", "2", ""],
        ["correct_alternative", NAME, "knn_tests", "3", "3", ""],
        ["correct_alternative", NAME, "sweep_tests", "2", "2", ""],
        ["knn_no_normalisation", NAME, "knn_tests", "0", "3", "failed_check"],
        ["knn_no_normalisation", NAME, "sweep_tests", "2", "2", "failed_check"],
        ["knn_off_by_one", NAME, "knn_tests", "0", "3", "failed_check"],
        ["knn_off_by_one", NAME, "sweep_tests", "2", "2", "failed_check"],
        ["sweep_not_nested", NAME, "knn_tests", "3", "3", "failed_check"],
        ["sweep_not_nested", NAME, "sweep_tests", "0", "2", "failed_check"],
        ["sweep_unbalanced", NAME, "knn_tests", "3", "3", "failed_check"],
        ["sweep_unbalanced", NAME, "sweep_tests", "0", "2", "failed_check"],
    ]
    assert rows[1:] == expected, printed


@pytest.mark.parametrize("learner, cell, error", [
    ("knn_no_normalisation", "knn_tests", "AssertionError: k=20, T=0.07: "),
    ("knn_off_by_one", "knn_tests", "AssertionError: k=20, T=0.07: "),
    ("sweep_not_nested", "sweep_tests", "AssertionError: the subsets are not nested"),
    ("sweep_unbalanced", "sweep_tests", "AssertionError: n=1: "),
])
def test_the_wrong_answers_pass_the_visible_tests_and_fail_the_hidden_ones(graded, learner,
                                                                           cell, error):
    check = "knn_classify" if cell == "knn_tests" else "label_efficiency"
    got, check_errors = graded_errors(graded[3], learner, cell, check)
    assert got.startswith(error), got
    assert check_errors == ["CheckFailed"]
