"""Self-checks of exercise 00 (the evaluation protocol): the weighted kNN classifier and the
label-efficiency sweep.

The references are ``sslkit.evaluate.knn_classify`` (the weighted kNN of *Unsupervised Feature
Learning via Non-Parametric Instance Discrimination*, 2018, arXiv 1805.01978) and
``sslkit.evaluate.label_efficiency`` (the protocol of *Big Self-Supervised Models are Strong
Semi-Supervised Learners*, 2020, arXiv 2006.10029). :func:`knn_recorder` lets a check (and the
graded tests) run the learner's sweep with the library's kNN in place of the learner's.
"""

from __future__ import annotations

import contextlib
import functools
import math
import operator
from collections.abc import Callable, Iterator, Mapping
from numbers import Number

import torch

from ._core import (
    CheckFailed,
    compare,
    compare_call,
    format_value,
    randn,
    run_checks,
    unit_rows,
    with_hint,
)

__all__ = ["knn_classify", "label_efficiency", "knn_recorder", "KnnCall"]

_KNN_TEMPERATURE = 0.07  # the sweep's kNN: temperature 0.07, k = min(20, labels in the subset)
_KNN_K = 20


def _on_circle(cosines, radii=None) -> torch.Tensor:
    """2-D points whose cosine similarity to the query ``(1, 0)`` is ``cosines[i]``: ``(N, 2)``.

    ``radii`` (default all 1) sets their lengths, which cosine similarity must ignore.
    """
    c = torch.tensor(cosines, dtype=torch.float64)
    r = torch.ones_like(c) if radii is None else torch.tensor(radii, dtype=torch.float64)
    return (torch.stack([c, (1 - c * c).clamp_min(0).sqrt()], dim=1) * r[:, None]).float()


def _knn_cases() -> dict[str, tuple[tuple, str | None]]:
    """The cases of :func:`knn_classify`: name → ``((train, labels, test, k, T, C), hint)``.

    Every case's reference votes have a clear winner (or an exact tie, in the tie case), so an
    implementation that sums the same votes in another order gets the same predictions.
    """
    train, labels = unit_rows(randn(40, 8, seed=10)), torch.arange(40) % 4
    queries = unit_rows(randn(16, 8, seed=11))

    def lengths(n, seed):  # from about 0.02 to 50: a dot product without normalising ranks by them
        return randn(n, 1, seed=seed, scale=2.0).exp()

    q = torch.tensor([[1.0, 0.0]])
    # exactly k: votes 1 (class 0), 0.60 and 0.55 (class 1), 0.30 (class 0) at T=0.1, so
    # k=2 → 0, k=3 → 1, k=4 → 0
    cos_k = [0.9, 0.9 + 0.1 * math.log(0.6), 0.9 + 0.1 * math.log(0.55),
             0.9 + 0.1 * math.log(0.3), 0.2, 0.1, -0.5]
    # ties: a direction and 4× the same direction have exactly the same cosine similarity
    ties_train = torch.tensor([[1.0, 0.0], [4.0, 0.0], [0.0, 2.0], [0.0, -1.0]])
    small = randn(12, 8, seed=14)
    return {
        "random unit-length features: N=40, D=8, 4 classes, 16 queries, k=5, T=0.07": (
            (train, labels, queries, 5, 0.07, 4),
            "go through the steps: cosine similarity of unit-length rows, the k largest, each "
            "adds exp(s / T) to its class's vote, argmax over classes"),
        "a batch of one query (1, 8)": (
            (train, labels, unit_rows(randn(1, 8, seed=12)), 5, 0.07, 4), None),
        "k=1: the label of the nearest neighbour": ((train, labels, queries, 1, 0.07, 4), None),
        "features of very different lengths (0.02 to 50): cosine similarity ignores length": (
            (train * lengths(40, 13), labels, queries * lengths(16, 15), 5, 0.07, 4),
            "divide every train and test feature by its L2 norm (F.normalize(x, dim=1)) before "
            "the dot product; without it a long vector is 'similar' to everything"),
        "weighted votes: one close neighbour outweighs two distant ones (k=3, T=0.05)": (
            (_on_circle([0.95, 0.6, 0.58, -0.2]), torch.tensor([2, 0, 0, 1]), q, 3, 0.05, 3),
            "each neighbour adds exp(s / T) to its class's vote, not 1"),
        "exactly k neighbours vote (k=3, T=0.1; k=2 or k=4 would answer class 0)": (
            (_on_circle(cos_k), torch.tensor([0, 1, 1, 0, 2, 2, 2]), q, 3, 0.1, 3),
            "use the k most similar training points: topk(k) on the similarities, not k+1 "
            "or k-1"),
        "T=0.01: exp(s / T) overflows float32 once s > 0.89": (
            (_on_circle([0.999, 0.99, 0.3, -0.3], [1.0, 3.0, 0.5, 2.0]),
             torch.tensor([3, 0, 1, 2]), q, 2, 0.01, 4),
            "exp(1 / 0.01) = exp(100) is inf in float32 (it stops near exp(88)); subtract each "
            "query's largest similarity before dividing by T: all votes of that query are "
            "multiplied by the same factor, so the prediction does not change, and nothing "
            "overflows"),
        "T=100: nearly an unweighted majority vote of the k=9": (
            (train, labels, queries, 9, 100.0, 4), None),
        "ties: equal votes go to the smallest class index, as torch.argmax does": (
            (ties_train, torch.tensor([2, 0, 1, 3]), torch.tensor([[1.0, 1.0], [-1.0, 0.0]]), 3,
             0.07, 4),
            "when classes get exactly the same vote, predict the smallest class index "
            "(votes.argmax(dim=1) does this)"),
        "k=50 > N=12 training points: k is clipped to N (all 12 vote)": (
            (small, torch.arange(12) % 3, randn(4, 8, seed=16), 50, 0.5, 3),
            "topk(k) fails for k > N: use min(k, N) neighbours"),
    }


def _knn_reference(train_features, train_labels, test_features, k, temperature, num_classes):
    from .. import evaluate

    return evaluate.knn_classify(train_features, train_labels, test_features, k=k,
                                 temperature=temperature, num_classes=num_classes)


def knn_classify(learner_fn: Callable) -> None:
    """Check ``learner_fn(train_features, train_labels, test_features, k, temperature,
    num_classes)`` against ``sslkit.evaluate.knn_classify``.

    The weighted kNN of *Unsupervised Feature Learning via Non-Parametric Instance
    Discrimination* (2018, arXiv 1805.01978): shapes ``(N, D)``, ``(N,)``, ``(M, D)`` →
    predictions ``(M,)`` int64. Cases (10): random unit-length features, a batch of one query,
    ``k=1``, features of very different lengths (cosine similarity must normalise), a close
    neighbour outweighing two distant ones (votes are ``exp(s / T)``, not 1), exactly ``k``
    neighbours (``k ± 1`` answers differently), ``T = 0.01`` (``exp(s / T)`` overflows unless the
    largest similarity is subtracted), ``T = 100`` (nearly a majority vote), exact ties (the
    smallest class index wins) and ``k > N`` (clipped to ``N``). A failure names the case, the
    first differing query with both predictions, and a hint.
    """
    def case(args, hint):
        return with_hint(lambda: compare_call(learner_fn, _knn_reference, *args,
                                               name="predictions"), hint)

    run_checks("knn_classify", {name: case(args, hint)
                                for name, (args, hint) in _knn_cases().items()})


class KnnCall:
    """One call of ``knn_classify`` recorded by :func:`knn_recorder`.

    ``indices``: sorted ``(n,)`` int64 positions in the full ``train_features`` of the rows that
    were passed (``-1`` for a row that is not one of them); ``labels_match``: the labels passed
    are those rows' labels; ``n_train``: rows passed; ``k``, ``temperature``, ``num_classes``:
    the arguments as given.
    """

    def __init__(self, indices, labels_match, n_train, k, temperature, num_classes):
        self.indices, self.labels_match, self.n_train = indices, labels_match, n_train
        self.k, self.temperature, self.num_classes = k, temperature, num_classes

    def __repr__(self) -> str:
        return (f"KnnCall(n_train={self.n_train}, k={self.k}, temperature={self.temperature}, "
                f"num_classes={self.num_classes})")


@contextlib.contextmanager
def knn_recorder(learner_fn: Callable, train_features: torch.Tensor,
                 train_labels: torch.Tensor) -> Iterator[list[KnnCall]]:
    """Run ``learner_fn`` with the library's kNN in place of the learner's ``knn_classify``.

    ``with knn_recorder(label_efficiency_sweep, train_features, train_labels) as calls:`` binds
    the name ``knn_classify`` in ``learner_fn``'s module (the notebook) to a wrapper of
    ``sslkit.evaluate.knn_classify`` that records every call as a :class:`KnnCall` in ``calls``
    (which rows of ``train_features``, ``k``, ``temperature``, ``num_classes``), and restores the
    learner's own function afterwards, even on error. So checking the sweep neither depends on
    Part A nor can be fooled by it.
    """
    namespace = getattr(learner_fn, "__globals__", None)
    if not isinstance(namespace, dict):
        raise CheckFailed(f"expected a function defined with def, got "
                          f"{type(learner_fn).__name__}")
    rows = train_features.detach().cpu().float().contiguous()
    keys = {row.numpy().tobytes(): i for i, row in enumerate(rows)}
    all_labels = train_labels.detach().cpu().long()
    calls: list[KnnCall] = []

    def recording_knn(train_features, train_labels, test_features, k=_KNN_K,
                      temperature=_KNN_TEMPERATURE, num_classes=None):
        rows = train_features.detach().cpu().float().contiguous()
        idx = torch.tensor([keys.get(row.numpy().tobytes(), -1) for row in rows],
                           dtype=torch.long)
        labels = torch.as_tensor(train_labels).detach().cpu()
        known = idx >= 0
        match = labels.shape == idx.shape and torch.equal(labels[known].long(),
                                                          all_labels[idx[known]])
        calls.append(KnnCall(idx.sort().values, bool(match), int(idx.numel()), k, temperature,
                             num_classes))
        return _knn_reference(train_features, train_labels, test_features, k, temperature,
                              num_classes)

    missing = object()
    saved = namespace.get("knn_classify", missing)
    namespace["knn_classify"] = recording_knn
    try:
        yield calls
    finally:
        if saved is missing:
            namespace.pop("knn_classify", None)
        else:
            namespace["knn_classify"] = saved


def _reference_subsets(train_labels: torch.Tensor, labels_per_class, seed: int
                       ) -> dict[int | None, torch.Tensor]:
    """The nested subsets of ``sslkit.evaluate.label_efficiency``: ``{n: sorted indices}``.

    One generator seeded once; for each class in increasing order, a random permutation of that
    class's indices; the ``n``-label subset is the first ``n`` of every permutation (all for
    ``None``).
    """
    generator = torch.Generator().manual_seed(seed)
    orders = []
    for c in torch.unique(train_labels).tolist():
        idx = (train_labels == c).nonzero().squeeze(1)
        orders.append(idx[torch.randperm(idx.numel(), generator=generator)])
    return {n: (torch.arange(train_labels.numel()) if n is None
                else torch.cat([order[:n] for order in orders]).sort().values)
            for n in labels_per_class}


def _sweep_data():
    """Seeded, class-informative features: 4 classes × 12 training examples (in shuffled order),
    40 test examples, D=6."""
    classes, per_class, dim = 4, 12, 6
    means = randn(classes, dim, seed=20, scale=1.5)
    order = torch.randperm(classes * per_class, generator=torch.Generator().manual_seed(21))
    train_y = (torch.arange(classes * per_class) % classes)[order]
    test_y = torch.arange(40) % classes
    train_x = means[train_y] + randn(classes * per_class, dim, seed=22)
    test_x = means[test_y] + randn(40, dim, seed=23)
    return train_x, train_y, test_x, test_y


class _SweepRun:
    """The learner's sweep on the seeded data of :func:`_sweep_data`, run at most once per
    ``(labels_per_class, seed)`` under :func:`knn_recorder`; the cases below read its results."""

    def __init__(self, learner_fn: Callable):
        self.learner_fn = learner_fn
        self.train_x, self.train_y, self.test_x, self.test_y = _sweep_data()
        self.num_classes = int(self.train_y.max()) + 1
        self._runs: dict = {}

    def run(self, labels_per_class, seed) -> tuple[object, list[KnnCall]]:
        """``(the learner's result, the knn_classify calls it made)``."""
        key = (labels_per_class, seed)
        if key not in self._runs:
            with knn_recorder(self.learner_fn, self.train_x, self.train_y) as calls:
                result = self.learner_fn(self.train_x.clone(), self.train_y.clone(),
                                         self.test_x.clone(), self.test_y.clone(),
                                         labels_per_class=labels_per_class, seed=seed)
            self._runs[key] = (result, list(calls))
        return self._runs[key]

    def size(self, n) -> int:
        """How many training examples the ``n``-label subset holds (all of them for ``None``)."""
        return self.train_y.numel() if n is None else n * self.num_classes


def _case_structure(sweep: _SweepRun, labels_per_class=(1, 3, 12), seed=0) -> None:
    result, _ = sweep.run(labels_per_class, seed)
    if not isinstance(result, Mapping):
        raise CheckFailed(f"expected a dict {{n: accuracy}}, got {type(result).__name__}")
    if set(result) != set(labels_per_class):
        raise CheckFailed(f"the keys are {sorted(result, key=str)}, expected the entries of "
                          f"labels_per_class {list(labels_per_class)}")
    for n, acc in result.items():
        if isinstance(acc, torch.Tensor) and acc.numel() == 1:
            acc = acc.item()
        if not isinstance(acc, Number) or isinstance(acc, bool):
            raise CheckFailed(f"result[{n!r}] is a {type(acc).__name__}, expected a float "
                              "accuracy (use .item())")
        if not 0.0 <= acc <= 1.0:
            raise CheckFailed(f"result[{n!r}] = {format_value(acc)} is not an accuracy in "
                              "[0, 1]")


def _calls_for(sweep: _SweepRun, labels_per_class, seed) -> list[KnnCall]:
    """The sweep's ``knn_classify`` calls, after checking that there is one per ``n``, in order,
    each with the ``n``-label subset's rows of ``train_features`` and their labels."""
    _, calls = sweep.run(labels_per_class, seed)
    if not calls:
        raise CheckFailed("knn_classify was never called: classify the test set with your "
                          "knn_classify from Part A for every n")
    if len(calls) != len(labels_per_class):
        raise CheckFailed(f"knn_classify was called {len(calls)} times for "
                          f"labels_per_class={labels_per_class}: expected once per entry")
    for n, call in zip(labels_per_class, calls, strict=True):
        if call.n_train != sweep.size(n):
            raise CheckFailed(
                f"the call for n={n} received {call.n_train} training examples, expected "
                f"{sweep.size(n)} ({'all' if n is None else f'{n} per class'} × "
                f"{sweep.num_classes} classes); call knn_classify once per n, in the order of "
                "labels_per_class")
        if (call.indices < 0).any():
            bad = int((call.indices < 0).sum())
            raise CheckFailed(f"the call for n={n} received {bad} feature rows that are not "
                              "rows of train_features: pass train_features[subset] unchanged")
        if not call.labels_match:
            raise CheckFailed(f"the call for n={n} received labels that are not the labels "
                              "of its training examples: index features and labels with the "
                              "same subset")
        if len(set(call.indices.tolist())) != call.n_train:
            raise CheckFailed(f"the subset for n={n} holds some training example twice: "
                              "draw without replacement (a permutation)")
    return calls


def _case_arguments(sweep: _SweepRun) -> None:
    labels_per_class = (1, 3, 12)
    for n, call in zip(labels_per_class, _calls_for(sweep, labels_per_class, 0), strict=True):
        k = min(_KNN_K, call.n_train)
        try:
            used = min(operator.index(call.k), call.n_train)
        except TypeError:
            used = None
        if used != k:
            raise CheckFailed(f"the call for n={n} used k={call.k!r} with {call.n_train} "
                              f"training examples: expected min(20, {call.n_train}) = {k}")
        if not (isinstance(call.temperature, Number)
                and math.isclose(call.temperature, _KNN_TEMPERATURE)):
            raise CheckFailed(f"the call for n={n} used temperature={call.temperature!r}, "
                              f"expected {_KNN_TEMPERATURE}")
        if call.num_classes not in (None, sweep.num_classes):
            raise CheckFailed(f"the call for n={n} used num_classes={call.num_classes!r}, "
                              f"expected {sweep.num_classes} (int(train_labels.max()) + 1)")


def _case_balanced(sweep: _SweepRun) -> None:
    labels_per_class, c = (1, 3, 12), sweep.num_classes
    for n, call in zip(labels_per_class, _calls_for(sweep, labels_per_class, 0), strict=True):
        counts = torch.bincount(sweep.train_y[call.indices], minlength=c).tolist()
        if counts != [n] * c:
            raise CheckFailed(f"for n={n} the subset has {counts} examples of classes "
                              f"0..{c - 1}, expected {n} of each: take n examples "
                              "from every class, not n·C from the whole set")


def _case_nested(sweep: _SweepRun, labels_per_class=(1, 3, 12), seed=0) -> None:
    calls = _calls_for(sweep, labels_per_class, seed)
    by_n = sorted(zip(labels_per_class, calls, strict=True), key=lambda p: sweep.size(p[0]))
    for (n_small, small), (n_big, big) in zip(by_n, by_n[1:], strict=False):
        missing = sorted(set(small.indices.tolist()) - set(big.indices.tolist()))
        if missing:
            i = missing[0]
            raise CheckFailed(
                f"training example {i} (class {int(sweep.train_y[i])}) is in the {n_small}-label "
                f"subset but not in the {n_big}-label subset ({len(missing)} such examples): "
                "draw one permutation per class once, and take its first n for every n, so "
                "that more labels only add examples")


def _case_same_draw(sweep: _SweepRun, labels_per_class=(1, 3, 12), seed=0) -> None:
    calls = _calls_for(sweep, labels_per_class, seed)
    train_y = sweep.train_y
    want = _reference_subsets(train_y, labels_per_class, seed)
    for n, call in zip(labels_per_class, calls, strict=True):
        for c in range(sweep.num_classes):
            got_c = [i for i in call.indices.tolist() if train_y[i] == c]
            want_c = [i for i in want[n].tolist() if train_y[i] == c]
            if got_c != want_c:
                raise CheckFailed(
                    f"seed={seed}, n={n}, class {c}: you used training examples {got_c}, "
                    f"the reference draws {want_c}. Draw as the reference does: "
                    "g = torch.Generator().manual_seed(seed) once; then for c = 0, 1, ...: "
                    "idx = (train_labels == c).nonzero().squeeze(1) and "
                    "order = idx[torch.randperm(len(idx), generator=g)]")


def _case_everything(sweep: _SweepRun) -> None:
    labels_per_class = (2, None)
    _case_structure(sweep, labels_per_class, 0)
    _calls_for(sweep, labels_per_class, 0)


def _case_accuracies(sweep: _SweepRun, labels_per_class=(1, 3, 12, None), seed=0) -> None:
    from .. import evaluate

    _case_structure(sweep, labels_per_class, seed)
    table = evaluate.label_efficiency(sweep.train_x, sweep.train_y, sweep.test_x, sweep.test_y,
                                      labels_per_class=labels_per_class, method="knn",
                                      k=_KNN_K, temperature=_KNN_TEMPERATURE, seed=seed)
    want = dict(zip(labels_per_class, table["accuracy"].tolist(), strict=True))
    got = {n: (a.item() if isinstance(a, torch.Tensor) else a)
           for n, a in sweep.run(labels_per_class, seed)[0].items()}
    compare("accuracy", got, want, atol=1e-6, rtol=0)


def _case_another_seed_and_order(sweep: _SweepRun) -> None:
    labels_per_class, seed = (5, 2), 7
    _case_structure(sweep, labels_per_class, seed)
    _case_nested(sweep, labels_per_class, seed)
    _case_same_draw(sweep, labels_per_class, seed)
    _case_accuracies(sweep, labels_per_class, seed)


_SWEEP_CASES = {
    "returns a dict {n: accuracy} for labels_per_class=(1, 3, 12)": _case_structure,
    "one knn_classify call per n, with k=min(20, n·C) and temperature 0.07": _case_arguments,
    "class balance: the n-label subset has exactly n examples of every class": _case_balanced,
    "nested subsets: the 3-label subset contains the 1-label one, and so on": _case_nested,
    "the reference's seeded draw (one generator, classes in increasing order)": _case_same_draw,
    "n=None means all training labels": _case_everything,
    "accuracies equal evaluate.label_efficiency(method='knn', k=20, temperature=0.07)":
        _case_accuracies,
    "seed=7 and labels_per_class=(5, 2): another draw, still nested":
        _case_another_seed_and_order,
}


def label_efficiency(learner_fn: Callable) -> None:
    """Check ``learner_fn(train_features, train_labels, test_features, test_labels,
    labels_per_class, seed) -> {n: accuracy}`` against ``sslkit.evaluate.label_efficiency``.

    The label-efficiency sweep of *Big Self-Supervised Models are Strong Semi-Supervised
    Learners* (2020, arXiv 2006.10029) with a kNN probe. While it runs, the learner's
    ``knn_classify`` is replaced by the library's through :func:`knn_recorder`, which records the
    training examples each call receives; so the check is independent of Part A and can say which
    examples are wrong. Cases (8) on seeded features with 4 classes × 12 examples: the result is a
    dict ``{n: accuracy}``; one ``knn_classify`` call per ``n`` with ``k = min(20, n·C)`` and
    ``T = 0.07``; exactly ``n`` examples of every class; nested subsets; the reference's seeded
    draw; ``None`` means all labels; accuracies equal the reference's; another seed and another
    order of ``labels_per_class``.
    """
    sweep = _SweepRun(learner_fn)
    run_checks("label_efficiency", {name: functools.partial(case, sweep)
                                    for name, case in _SWEEP_CASES.items()})
