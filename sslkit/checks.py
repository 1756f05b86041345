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

Adding a check for a new exercise: one public function per exercise, named after it, built from
the helpers here. For example::

    def knn_classify(learner_fn):
        \"\"\"Check ``learner_fn(train_z, train_y, query_z, k)`` against the library's.\"\"\"
        from sslkit import evaluate
        z, y = randn(20, 8, seed=0), torch.arange(20) % 4
        run_checks("knn_classify", {
            "random features, k=5": lambda: compare_call(
                learner_fn, evaluate.knn_classify, z, y, randn(6, 8, seed=1), 5),
            "a query of one": ...,
        })

:func:`softmax` below is the worked example.
"""

from __future__ import annotations

import contextlib
import math
import operator
from collections.abc import Callable, Iterable, Iterator, Mapping
from numbers import Number

import torch

from ._validate import check_positive_int, check_range

__all__ = [
    "CheckFailed", "compare", "compare_call", "check_symmetric", "check_gradient_flow",
    "run_checks", "randn", "softmax",
]


class CheckFailed(AssertionError):
    """A public check found a difference; the message says what, where and by how much."""


# ---------------------------------------------------------------------------- formatting
def _index(flat: int, shape) -> tuple[int, ...]:
    idx = []
    for size in reversed(tuple(shape)):
        idx.append(flat % size)
        flat //= size
    return tuple(reversed(idx))


def _fmt_index(idx: tuple[int, ...]) -> str:
    return "(" + ", ".join(map(str, idx)) + ("," if len(idx) == 1 else "") + ")"


def _fmt(value) -> str:
    if isinstance(value, float):
        return "nan" if math.isnan(value) else f"{value:.6g}"
    return str(value)


def _tolerances(atol, rtol) -> None:
    check_range("atol", atol, 0, None)
    check_range("rtol", rtol, 0, None)


# ---------------------------------------------------------------------------- comparisons
def randn(*shape: int, seed: int = 0, scale: float = 1.0,
          dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Seeded standard normal tensor of ``shape`` (times ``scale``): the inputs of a check."""
    for i, size in enumerate(shape):
        check_positive_int(f"shape[{i}]", size)
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=generator, dtype=dtype) * scale


def _compare_tensors(name: str, got: torch.Tensor, want: torch.Tensor, atol: float,
                     rtol: float, check_dtype: bool) -> None:
    if tuple(got.shape) != tuple(want.shape):
        raise CheckFailed(f"{name}: shape {tuple(got.shape)} differs from the expected "
                          f"{tuple(want.shape)}")
    if check_dtype and got.dtype != want.dtype:
        raise CheckFailed(f"{name}: dtype {got.dtype} differs from the expected {want.dtype}")
    if got.device.type != want.device.type:
        raise CheckFailed(f"{name}: tensor is on {got.device}, expected {want.device}")
    got, want = got.detach().cpu(), want.detach().cpu()
    if got.numel() == 0:
        return
    if got.is_floating_point() or got.is_complex() or want.is_floating_point():
        got_bad, want_bad = ~torch.isfinite(got), ~torch.isfinite(want)
        unexpected = got_bad & ~want_bad
        if unexpected.any():
            flat = int(unexpected.flatten().nonzero()[0])
            idx = _index(flat, got.shape)
            kind = _fmt(got[idx].item())
            raise CheckFailed(
                f"{name}: got {kind} at index {_fmt_index(idx)} where {_fmt(want[idx].item())} "
                f"was expected ({int(unexpected.sum())} of {got.numel()} values are NaN/Inf "
                "where the reference is finite)")
        common = torch.promote_types(got.dtype, want.dtype)
        close = torch.isclose(got.to(common), want.to(common), rtol=rtol, atol=atol,
                              equal_nan=True)
    else:
        close = got == want
    if not close.all():
        wrong = ~close
        flat = int(wrong.flatten().nonzero()[0])
        idx = _index(flat, got.shape)
        msg = (f"{name}: values differ at {int(wrong.sum())} of {got.numel()} positions; first "
               f"at index {_fmt_index(idx)}: got {_fmt(got[idx].item())}, expected "
               f"{_fmt(want[idx].item())}")
        if want.is_floating_point():
            finite = torch.isfinite(got) & torch.isfinite(want)
            diff = (got.double() - want.double()).abs()[finite]
            biggest = float(diff.max()) if diff.numel() else float("nan")
            msg += f" (largest difference {biggest:.3g}; tolerance atol={atol:g}, rtol={rtol:g})"
        raise CheckFailed(msg)


def compare(name: str, learner_out, reference_out, *, atol: float = 1e-5, rtol: float = 1e-4,
            check_dtype: bool = True) -> None:
    """Raise :class:`CheckFailed` saying precisely how ``learner_out`` differs from the reference.

    Tensors (any shape): the type, then the shape, the dtype (unless ``check_dtype=False``) and
    the device must match; then NaN/Inf where the reference is finite is reported with its first
    index; then values must satisfy ``|got - want| <= atol + rtol * |want|`` (exact equality for
    integer and bool tensors), and the first index that does not is reported with both values.
    Tuples/lists and dicts are compared element by element (``name[i]``, ``name['key']``),
    Python numbers with the same tolerances, anything else with ``==``.
    """
    _tolerances(atol, rtol)
    if isinstance(reference_out, torch.Tensor):
        if not isinstance(learner_out, torch.Tensor):
            hint = (" (convert with torch.as_tensor)" if hasattr(learner_out, "__array__")
                    or isinstance(learner_out, Number | list) else "")
            raise CheckFailed(f"{name}: expected a torch.Tensor, got "
                              f"{type(learner_out).__name__}{hint}")
        _compare_tensors(name, learner_out, reference_out, atol, rtol, check_dtype)
    elif isinstance(reference_out, tuple | list):
        if not isinstance(learner_out, tuple | list):
            raise CheckFailed(f"{name}: expected a {type(reference_out).__name__} of "
                              f"{len(reference_out)} items, got {type(learner_out).__name__}")
        if len(learner_out) != len(reference_out):
            raise CheckFailed(f"{name}: expected {len(reference_out)} items, got "
                              f"{len(learner_out)}")
        for i, (got, want) in enumerate(zip(learner_out, reference_out, strict=True)):
            compare(f"{name}[{i}]", got, want, atol=atol, rtol=rtol, check_dtype=check_dtype)
    elif isinstance(reference_out, Mapping):
        if not isinstance(learner_out, Mapping):
            raise CheckFailed(f"{name}: expected a dict, got {type(learner_out).__name__}")
        if set(learner_out) != set(reference_out):
            missing = sorted(map(str, set(reference_out) - set(learner_out)))
            extra = sorted(map(str, set(learner_out) - set(reference_out)))
            raise CheckFailed(f"{name}: keys differ (missing {missing}, unexpected {extra})")
        for key, want in reference_out.items():
            compare(f"{name}[{key!r}]", learner_out[key], want, atol=atol, rtol=rtol,
                    check_dtype=check_dtype)
    elif isinstance(reference_out, Number) and not isinstance(reference_out, bool):
        got = learner_out
        if isinstance(got, torch.Tensor) and got.numel() == 1:
            got = got.item()
        if not isinstance(got, Number) or isinstance(got, bool):
            raise CheckFailed(f"{name}: expected a number, got {type(learner_out).__name__}")
        if math.isnan(got) and not math.isnan(reference_out):
            raise CheckFailed(f"{name}: got nan, expected {_fmt(reference_out)}")
        if not math.isclose(got, reference_out, rel_tol=rtol, abs_tol=atol) and not (
                math.isnan(got) and math.isnan(reference_out)):
            raise CheckFailed(f"{name}: got {_fmt(got)}, expected {_fmt(reference_out)} "
                              f"(tolerance atol={atol:g}, rtol={rtol:g})")
    elif learner_out != reference_out:
        raise CheckFailed(f"{name}: got {learner_out!r}, expected {reference_out!r}")


def _clone(value):
    return value.detach().clone() if isinstance(value, torch.Tensor) else value


def compare_call(learner_fn: Callable, reference_fn: Callable, *args, name: str = "output",
                 atol: float = 1e-5, rtol: float = 1e-4, check_dtype: bool = True,
                 **kwargs) -> None:
    """Call both functions on copies of the same inputs and :func:`compare` the results.

    Also fails if the learner's function modified a tensor argument in place (the reference and
    the learner each get their own copy, so neither can affect the other).
    """
    want = reference_fn(*map(_clone, args), **kwargs)
    learner_args = [_clone(a) for a in args]
    got = learner_fn(*learner_args, **kwargs)
    for i, (original, seen) in enumerate(zip(args, learner_args, strict=True)):
        if isinstance(original, torch.Tensor) and not (
                seen.shape == original.shape and torch.equal(seen, original.detach())):
            raise CheckFailed(f"your function modified its argument {i} in place; work on a "
                              "copy (x = x - m rather than x -= m or x.sub_(m))")
    compare(name, got, want, atol=atol, rtol=rtol, check_dtype=check_dtype)


def check_symmetric(name: str, matrix, *, atol: float = 1e-6, rtol: float = 0.0) -> None:
    """Fail unless ``matrix`` (..., n, n) equals its transpose; report the first asymmetric pair.

    Useful for similarity and covariance matrices: the message gives ``M[i, j]`` and ``M[j, i]``.
    """
    _tolerances(atol, rtol)
    if not isinstance(matrix, torch.Tensor):
        raise CheckFailed(f"{name}: expected a torch.Tensor, got {type(matrix).__name__}")
    if matrix.dim() < 2 or matrix.shape[-1] != matrix.shape[-2]:
        raise CheckFailed(f"{name}: expected a square matrix (..., n, n), got shape "
                          f"{tuple(matrix.shape)}")
    m = matrix.detach().cpu()
    close = torch.isclose(m, m.transpose(-1, -2), rtol=rtol, atol=atol, equal_nan=True)
    if not close.all():
        idx = _index(int((~close).flatten().nonzero()[0]), m.shape)
        swapped = idx[:-2] + (idx[-1], idx[-2])
        raise CheckFailed(f"{name}: not symmetric: M{_fmt_index(idx)}={_fmt(m[idx].item())} but "
                          f"M{_fmt_index(swapped)}={_fmt(m[swapped].item())}")


def check_gradient_flow(name: str, fn: Callable, *inputs, wrt: Iterable[int] | None = None,
                        seed: int = 0) -> None:
    """Fail unless gradients flow from ``fn(*inputs)`` back to the inputs.

    Floating tensors among ``inputs`` (or those at the positions in ``wrt``) are copied with
    ``requires_grad=True``; the output is reduced with seeded random weights (a plain sum can
    have zero gradient: the rows of a softmax always sum to one) and backpropagated. Reports an
    output detached from the graph, a gradient that is ``None``, all zero, or not finite.
    """
    positions = list(range(len(inputs))) if wrt is None else list(wrt)
    leaves = list(inputs)
    for i in positions:
        x = inputs[i]
        if isinstance(x, torch.Tensor) and x.is_floating_point():
            leaves[i] = x.detach().clone().requires_grad_(True)
    positions = [i for i in positions if isinstance(leaves[i], torch.Tensor)
                 and leaves[i].requires_grad]
    if not positions:
        raise ValueError("check_gradient_flow needs at least one floating-point tensor input")
    out = fn(*leaves)
    if not isinstance(out, torch.Tensor):
        raise CheckFailed(f"{name}: expected a torch.Tensor output, got {type(out).__name__}")
    if not out.requires_grad:
        raise CheckFailed(f"{name}: the output is cut off from the inputs, so no gradient can "
                          "flow; avoid .detach(), .item(), .numpy(), torch.no_grad() and "
                          "building a new tensor from Python numbers")
    weights = torch.randn(out.shape, generator=torch.Generator().manual_seed(seed))
    (out * weights.to(out.dtype).to(out.device)).sum().backward()
    for i in positions:
        grad = leaves[i].grad
        if grad is None:
            raise CheckFailed(f"{name}: no gradient reached input {i}: the output does not "
                              "depend on it through differentiable operations")
        if not torch.isfinite(grad).all():
            raise CheckFailed(f"{name}: the gradient with respect to input {i} contains NaN/Inf")
        if not grad.any():
            raise CheckFailed(f"{name}: the gradient with respect to input {i} is all zero "
                              "(argmax, rounding or comparisons have no gradient)")


# ---------------------------------------------------------------------------- the runner
def run_checks(title: str, cases) -> None:
    """Run named cases in order, one printed line each, then ``"<title>: N public checks passed."``.

    ``cases`` is a dict (or an iterable of pairs) mapping a case name, e.g.
    ``"batch of 1 (1, 7)"``, to a function of no argument that raises on a difference
    (:class:`CheckFailed` or any ``AssertionError``). The first failure raises
    :class:`CheckFailed` naming the case and the difference; a ``NotImplementedError`` from the
    learner's code is re-raised as ``NotImplementedError("<title>: not implemented yet: ...")``;
    any other exception becomes :class:`CheckFailed` naming its type (chained to the original).
    """
    items = list(cases.items()) if isinstance(cases, Mapping) else list(cases)
    if not items:
        raise ValueError(f"cases={cases!r} is invalid: give at least one (name, function) pair")
    n = len(items)
    for i, (name, case) in enumerate(items, 1):
        try:
            case()
        except NotImplementedError as err:
            print(f"  ✗ {name}: not implemented yet")
            detail = str(err) or "your function still raises NotImplementedError"
            raise NotImplementedError(f"{title}: not implemented yet: {detail}") from None
        except AssertionError as err:
            print(f"  ✗ {name}")
            raise CheckFailed(f"{title}: check {i}/{n} '{name}' failed: {err}") from None
        except Exception as err:
            print(f"  ✗ {name}: {type(err).__name__}")
            raise CheckFailed(f"{title}: check {i}/{n} '{name}' failed: your code raised "
                              f"{type(err).__name__}: {err}") from err
        print(f"  ✓ {name}")
    print(f"{title}: {n} public checks passed.")


# ---------------------------------------------------------------------------- worked example
def softmax(learner_fn: Callable[[torch.Tensor], torch.Tensor]) -> None:
    """Check ``learner_fn(logits (..., C)) -> probabilities (..., C)`` against ``torch.softmax``.

    The softmax is taken over the last dimension. Cases: random logits, a batch of one, a 3-d
    input (the last dimension, not the first), large logits of ±1000 (subtract the row maximum
    before ``exp`` or it overflows to ``inf / inf = nan``), ties (equal logits give a uniform
    distribution), and gradient flow to the logits.
    """
    def same(x):
        return lambda: compare_call(learner_fn, lambda t: torch.softmax(t, dim=-1), x,
                                    name="probabilities", atol=1e-6, rtol=1e-5)

    run_checks("softmax", {
        "random logits (4, 10)": same(randn(4, 10, seed=0)),
        "batch of 1 (1, 7)": same(randn(1, 7, seed=1, scale=3.0)),
        "3-d logits (2, 3, 5), softmax over the last dim": same(randn(2, 3, 5, seed=2)),
        "large logits ±1000 (numerical stability)": same(
            torch.tensor([[1000.0, 0.0, -1000.0], [1000.0, 1000.0, 999.0]])),
        "ties (equal logits give a uniform distribution)": same(
            torch.tensor([[2.5, 2.5, 2.5, 2.5], [1.0, 1.0, -1.0, -1.0]])),
        "gradient flows to the logits": lambda: check_gradient_flow(
            "softmax", learner_fn, randn(3, 6, seed=3)),
    })


# ---------------------------------------------------------------------------- exercise 00
# Exercise 00 (the evaluation protocol): the weighted kNN classifier and the label-efficiency
# sweep; the references are sslkit.evaluate.knn_classify and sslkit.evaluate.label_efficiency.
__all__ += ["knn_classify", "label_efficiency", "knn_recorder", "KnnCall"]

_KNN_TEMPERATURE = 0.07  # the sweep's kNN: temperature 0.07, k = min(20, labels in the subset)
_KNN_K = 20


def _with_hint(case: Callable[[], None], hint: str | None) -> Callable[[], None]:
    """Wrap a case so that a failure (or an exception from the learner's code) ends with a hint."""
    if not hint:
        return case

    def run() -> None:
        try:
            case()
        except NotImplementedError:
            raise
        except AssertionError as err:
            raise CheckFailed(f"{err}. Hint: {hint}") from None
        except Exception as err:
            raise CheckFailed(f"your code raised {type(err).__name__}: {err}. Hint: {hint}"
                              ) from err

    return run


def _on_circle(cosines, radii=None) -> torch.Tensor:
    """2-D points whose cosine similarity to the query ``(1, 0)`` is ``cosines[i]``: ``(N, 2)``.

    ``radii`` (default all 1) sets their lengths, which cosine similarity must ignore.
    """
    c = torch.tensor(cosines, dtype=torch.float64)
    r = torch.ones_like(c) if radii is None else torch.tensor(radii, dtype=torch.float64)
    return (torch.stack([c, (1 - c * c).clamp_min(0).sqrt()], dim=1) * r[:, None]).float()


def _unit(x: torch.Tensor) -> torch.Tensor:
    return x / x.norm(dim=1, keepdim=True)


def _knn_cases() -> dict[str, tuple[tuple, str | None]]:
    """The cases of :func:`knn_classify`: name → ``((train, labels, test, k, T, C), hint)``.

    Every case's reference votes have a clear winner (or an exact tie, in the tie case), so an
    implementation that sums the same votes in another order gets the same predictions.
    """
    train, labels = _unit(randn(40, 8, seed=10)), torch.arange(40) % 4
    queries = _unit(randn(16, 8, seed=11))

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
            (train, labels, _unit(randn(1, 8, seed=12)), 5, 0.07, 4), None),
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
    from . import evaluate

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
        return _with_hint(lambda: compare_call(learner_fn, _knn_reference, *args,
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
    from . import evaluate

    train_x, train_y, test_x, test_y = _sweep_data()
    num_classes = int(train_y.max()) + 1
    runs: dict = {}

    def run(labels_per_class, seed):
        key = (labels_per_class, seed)
        if key not in runs:
            with knn_recorder(learner_fn, train_x, train_y) as calls:
                result = learner_fn(train_x.clone(), train_y.clone(), test_x.clone(),
                                    test_y.clone(), labels_per_class=labels_per_class, seed=seed)
            runs[key] = (result, list(calls))
        return runs[key]

    def size(n):
        return train_y.numel() if n is None else n * num_classes

    def structure(labels_per_class=(1, 3, 12), seed=0):
        result, _ = run(labels_per_class, seed)
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
                raise CheckFailed(f"result[{n!r}] = {_fmt(acc)} is not an accuracy in [0, 1]")

    def calls_for(labels_per_class, seed):
        _, calls = run(labels_per_class, seed)
        if not calls:
            raise CheckFailed("knn_classify was never called: classify the test set with your "
                              "knn_classify from Part A for every n")
        if len(calls) != len(labels_per_class):
            raise CheckFailed(f"knn_classify was called {len(calls)} times for "
                              f"labels_per_class={labels_per_class}: expected once per entry")
        for n, call in zip(labels_per_class, calls, strict=True):
            if call.n_train != size(n):
                raise CheckFailed(
                    f"the call for n={n} received {call.n_train} training examples, expected "
                    f"{size(n)} ({'all' if n is None else f'{n} per class'} × {num_classes} "
                    "classes); call knn_classify once per n, in the order of labels_per_class")
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

    def arguments():
        labels_per_class = (1, 3, 12)
        for n, call in zip(labels_per_class, calls_for(labels_per_class, 0), strict=True):
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
            if call.num_classes not in (None, num_classes):
                raise CheckFailed(f"the call for n={n} used num_classes={call.num_classes!r}, "
                                  f"expected {num_classes} (int(train_labels.max()) + 1)")

    def balanced():
        labels_per_class = (1, 3, 12)
        for n, call in zip(labels_per_class, calls_for(labels_per_class, 0), strict=True):
            counts = torch.bincount(train_y[call.indices], minlength=num_classes).tolist()
            if counts != [n] * num_classes:
                raise CheckFailed(f"for n={n} the subset has {counts} examples of classes "
                                  f"0..{num_classes - 1}, expected {n} of each: take n examples "
                                  "from every class, not n·C from the whole set")

    def nested(labels_per_class=(1, 3, 12), seed=0):
        calls = calls_for(labels_per_class, seed)
        by_n = sorted(zip(labels_per_class, calls, strict=True), key=lambda p: size(p[0]))
        for (n_small, small), (n_big, big) in zip(by_n, by_n[1:], strict=False):
            missing = sorted(set(small.indices.tolist()) - set(big.indices.tolist()))
            if missing:
                i = missing[0]
                raise CheckFailed(
                    f"training example {i} (class {int(train_y[i])}) is in the {n_small}-label "
                    f"subset but not in the {n_big}-label subset ({len(missing)} such examples): "
                    "draw one permutation per class once, and take its first n for every n, so "
                    "that more labels only add examples")

    def same_draw(labels_per_class=(1, 3, 12), seed=0):
        calls = calls_for(labels_per_class, seed)
        want = _reference_subsets(train_y, labels_per_class, seed)
        for n, call in zip(labels_per_class, calls, strict=True):
            for c in range(num_classes):
                got_c = [i for i in call.indices.tolist() if train_y[i] == c]
                want_c = [i for i in want[n].tolist() if train_y[i] == c]
                if got_c != want_c:
                    raise CheckFailed(
                        f"seed={seed}, n={n}, class {c}: you used training examples {got_c}, "
                        f"the reference draws {want_c}. Draw as the reference does: "
                        "g = torch.Generator().manual_seed(seed) once; then for c = 0, 1, ...: "
                        "idx = (train_labels == c).nonzero().squeeze(1) and "
                        "order = idx[torch.randperm(len(idx), generator=g)]")

    def everything():
        labels_per_class = (2, None)
        structure(labels_per_class, 0)
        calls_for(labels_per_class, 0)

    def accuracies(labels_per_class=(1, 3, 12, None), seed=0):
        structure(labels_per_class, seed)
        table = evaluate.label_efficiency(train_x, train_y, test_x, test_y,
                                          labels_per_class=labels_per_class, method="knn",
                                          k=_KNN_K, temperature=_KNN_TEMPERATURE, seed=seed)
        want = dict(zip(labels_per_class, table["accuracy"].tolist(), strict=True))
        got = {n: (a.item() if isinstance(a, torch.Tensor) else a)
               for n, a in run(labels_per_class, seed)[0].items()}
        compare("accuracy", got, want, atol=1e-6, rtol=0)

    def another_seed_and_order():
        labels_per_class, seed = (5, 2), 7
        structure(labels_per_class, seed)
        nested(labels_per_class, seed)
        same_draw(labels_per_class, seed)
        accuracies(labels_per_class, seed)

    run_checks("label_efficiency", {
        "returns a dict {n: accuracy} for labels_per_class=(1, 3, 12)": structure,
        "one knn_classify call per n, with k=min(20, n·C) and temperature 0.07": arguments,
        "class balance: the n-label subset has exactly n examples of every class": balanced,
        "nested subsets: the 3-label subset contains the 1-label one, and so on": nested,
        "the reference's seeded draw (one generator, classes in increasing order)": same_draw,
        "n=None means all training labels": everything,
        "accuracies equal evaluate.label_efficiency(method='knn', k=20, temperature=0.07)":
            accuracies,
        "seed=7 and labels_per_class=(5, 2): another draw, still nested": another_seed_and_order,
    })


# ---------------------------------------------------------------------------- exercise 01
# Exercise 01 (why unlabeled data helps): the E-step and the M-step of EM for a mixture of
# spherical Gaussians with one shared variance, and the pretrain-then-ERM learner; the references
# are sslkit.theory.e_step, sslkit.theory.m_step and sslkit.theory.pretrain_then_erm.
__all__ += ["e_step", "m_step", "pretrain_then_erm"]

_E_HINT = ("log r_ik = log w_k − ||x_i − μ_k||² / (2σ²) − (d/2)·log(2πσ²) − log p(x_i), with "
           "log p(x_i) = logsumexp over k of the first three terms (torch.logsumexp(..., dim=-1))")
_STABLE_HINT = ("exp() of a log-density this small is 0 in floating point, and 0 / 0 = nan: "
                "stay in log space. log p(x_i) = torch.logsumexp(log_joint, dim=-1) subtracts the "
                "largest term before exponentiating; r = (log_joint − log p(x)[:, None]).exp()")
_M_HINTS = {
    "weights": "w_k = N_k / N with N_k = Σ_i r_ik (the column sums of resp): a share of the "
               "N points, so the weights sum to 1",
    "means": "μ_k = Σ_i r_ik x_i / N_k: every point counts, weighted by its responsibility, "
             "and divided by the total responsibility N_k of the component (resp.T @ x / N_k)",
    "variance": "σ² = Σ_i Σ_k r_ik ||x_i − μ_k||² / (N·d) with the NEW centres μ_k: the "
                "maximum-likelihood estimate divides by all N·d numbers (no N − 1), then "
                "clamp_min(min_variance)",
}


def _mixture_copy(mixture, dtype=None):
    """A new ``theory.GaussianMixture`` with cloned (optionally cast) tensors."""
    from . import theory

    def cast(t):
        t = torch.as_tensor(t).detach().clone()
        return t if dtype is None else t.to(dtype)

    return theory.GaussianMixture(cast(mixture.means), cast(mixture.variance),
                                  cast(mixture.weights))


def _same_mixture(before, after) -> bool:
    return all(torch.equal(torch.as_tensor(a), torch.as_tensor(b)) for a, b in (
        (before.means, after.means), (before.variance, after.variance),
        (before.weights, after.weights)))


def _e_step_reference(x: torch.Tensor, mixture):
    """``theory.e_step`` computed in float64 and cast back to ``x.dtype`` (a precise target)."""
    from . import theory

    resp, ll = theory.e_step(x.double(), _mixture_copy(mixture, torch.float64))
    return resp.to(x.dtype), ll.to(x.dtype)


def _call_e_step(learner_fn: Callable, x: torch.Tensor, mixture):
    """Call ``learner_fn(x, mixture)`` on copies; check it returns ``(resp (N, K), ll ())`` and
    modified nothing in place."""
    x_copy, mix_copy = x.clone(), _mixture_copy(mixture)
    out = learner_fn(x_copy, mix_copy)
    if not torch.equal(x_copy, x):
        raise CheckFailed("your e_step modified x in place; work on new tensors "
                          "(d = x - mu rather than x -= mu)")
    if not _same_mixture(mixture, mix_copy):
        raise CheckFailed("your e_step modified the mixture's means, variance or weights in place")
    if not (isinstance(out, tuple | list) and len(out) == 2):
        raise CheckFailed(f"expected a pair (responsibilities (N, K), mean log-likelihood), got "
                          f"{type(out).__name__}: return both, as theory.e_step does")
    resp, ll = out
    n, k = x.shape[0], mixture.means.shape[0]
    for name, value, shape in (("responsibilities", resp, (n, k)),
                               ("mean log-likelihood", ll, ())):
        if not isinstance(value, torch.Tensor):
            raise CheckFailed(f"{name}: expected a torch.Tensor of shape {shape}, got "
                              f"{type(value).__name__}")
        if tuple(value.shape) != shape:
            raise CheckFailed(f"{name}: shape {tuple(value.shape)} differs from the expected "
                              f"{shape}" + (" (a 0-d tensor: the mean over the N points)"
                                            if not shape else " (one row per point, one column "
                                            "per component)"))
    return resp, ll


def _compare_e_step(learner_fn: Callable, x: torch.Tensor, mixture, *, atol: float = 1e-5,
                    rtol: float = 1e-4) -> None:
    resp, ll = _call_e_step(learner_fn, x, mixture)
    want_resp, want_ll = _e_step_reference(x, mixture)
    compare("responsibilities", resp, want_resp, atol=atol, rtol=rtol)
    compare("mean log-likelihood", ll, want_ll, atol=atol, rtol=rtol)


def _e_cases() -> dict[str, tuple[tuple, str | None]]:
    """The cases of :func:`e_step`: name → ``((x, mixture), hint)``; the first is also used for
    the row-sum check."""
    from . import theory

    def mix(means, variance, weights):
        return theory.GaussianMixture(torch.as_tensor(means, dtype=torch.float32),
                                      torch.tensor(float(variance)),
                                      torch.as_tensor(weights, dtype=torch.float32))

    means = randn(3, 5, seed=30, scale=2.0)
    random_mix = mix(means, 1.7, [0.5, 0.3, 0.2])
    x = means[torch.arange(20) % 3] + randn(20, 5, seed=31, scale=1.3)
    lecture = mix([[-1.0], [1.0]], 1.0, [0.5, 0.5])
    x4 = torch.tensor([[-2.0], [-1.0], [1.0], [2.0]])
    tie_means = torch.stack([means[0], means[0], means[1]])
    direction = _unit(randn(1, 5, seed=32))
    far = torch.cat([x[:3], means[:1] + 1000.0 * direction, means[2:3] - 700.0 * direction])
    high = randn(2, 2000, seed=33)
    return {
        "random data: N=20, d=5, K=3, weights (0.5, 0.3, 0.2), σ²=1.7": (
            (x, random_mix), _E_HINT + "; weights and variance both matter here"),
        "the lecture's four points in 1-d: p(clump 2 | x) = sigmoid(2x)": (
            (x4, lecture), None),
        "a single point (1, 5)": ((x[7:8], random_mix), None),
        "ties: components 0 and 1 share a centre and a weight (equal responsibilities)": (
            (x, mix(tie_means, 1.0, [0.4, 0.4, 0.2])), None),
        "ties: all centres equal, so the responsibilities are the weights": (
            (x, mix(torch.zeros(3, 5), 2.0, [0.5, 0.3, 0.2])), "with equal centres the Gaussian "
            "terms cancel in Bayes' rule: r_ik = w_k"),
        "points 700 and 1,000 away from the centres: exp(-290,000) is 0, no NaN allowed": (
            (far, random_mix), _STABLE_HINT),
        "d=2,000: every density is below exp(-1,800), even at a centre": (
            (high[[0, 1, 1]] + 0.1 * randn(3, 2000, seed=34), mix(high, 1.0, [0.5, 0.5])),
            _STABLE_HINT),
    }


def e_step(learner_fn: Callable) -> None:
    """Check ``learner_fn(x, mixture) -> (responsibilities, mean log-likelihood)`` against
    ``sslkit.theory.e_step``.

    The E-step of *Maximum likelihood from incomplete data via the EM algorithm* (Dempster, Laird
    & Rubin, 1977) for a ``theory.GaussianMixture`` of ``K`` spherical Gaussians with one shared
    variance: ``x`` ``(N, d)``, ``mixture.means`` ``(K, d)``, ``mixture.variance`` a 0-d tensor
    ``σ²``, ``mixture.weights`` ``(K,)`` → responsibilities ``r_ik = p(z=k | x_i)`` ``(N, K)`` and
    ``(1/N) Σ_i log p(x_i)`` (0-d). The reference is computed in float64. Cases (9): the output's
    structure and rows summing to 1; random data with unequal weights; the lecture's 1-d example;
    a single point; two kinds of ties (shared centres; all centres equal, where the
    responsibilities are the weights); points 1,000 away from the centres and ``d = 2000``
    (every ``exp`` of a log-density underflows to 0, so only a log-sum-exp implementation
    avoids ``0 / 0``); and a run under ``torch.no_grad()`` (EM needs no gradients) that leaves
    its inputs unchanged.
    """
    cases = _e_cases()
    (x, mixture), _ = next(iter(cases.values()))

    def structure() -> None:
        resp, _ = _call_e_step(learner_fn, x, mixture)
        sums = resp.detach().double().sum(-1)
        bad = ~torch.isclose(sums, torch.ones_like(sums), rtol=0, atol=1e-4)
        if bad.any():
            i = int(bad.nonzero()[0])
            raise CheckFailed(
                f"row {i} of the responsibilities sums to {_fmt(float(sums[i]))}, not 1 "
                f"({int(bad.sum())} of {len(sums)} rows): responsibilities are probabilities "
                "over the K components. Hint: divide each point's K joint densities by their "
                "sum p(x_i) (in log space: subtract torch.logsumexp(log_joint, dim=-1) over the "
                "components, dim=-1, not over the points)")

    def case(args, hint):
        return _with_hint(lambda: _compare_e_step(learner_fn, *args), hint)

    def no_grad() -> None:
        with torch.no_grad():
            _compare_e_step(learner_fn, x, mixture)

    run_checks("e_step", {
        "returns (responsibilities (N, K), mean log-likelihood ()) and every row sums to 1":
            structure,
        **{name: case(args, hint) for name, (args, hint) in cases.items()},
        "EM needs no gradients: runs under torch.no_grad(), inputs unchanged": _with_hint(
            no_grad, "the E-step is a formula: no .backward(), torch.autograd or optimiser"),
    })


def _m_step_reference(x: torch.Tensor, resp: torch.Tensor, min_variance: float = 1e-6):
    """``theory.m_step`` computed in float64 and cast back to ``x.dtype``."""
    from . import theory

    mix = theory.m_step(x.double(), resp.double(), min_variance=min_variance)
    return theory.GaussianMixture(mix.means.to(x.dtype), mix.variance.to(x.dtype),
                                  mix.weights.to(x.dtype))


def _variance_diagnosis(got: float, want: float, n: int, d: int) -> str:
    """Name a wrong denominator when ``got/want`` is exactly the ratio it would cause."""
    if not (math.isfinite(got) and want > 0):
        return ""
    for denominator, text in (((n - 1) * d, f"(N − 1)·d = {(n - 1) * d}"),
                              (n * d - 1, f"N·d − 1 = {n * d - 1}"),
                              (n, f"N = {n} (forgetting the d = {d} coordinates)"),
                              (d, f"d = {d} (forgetting the N = {n} points)"),
                              (n * (d - 1), f"N·(d − 1) = {n * (d - 1)}")):
        if denominator > 0 and denominator != n * d and math.isclose(
                got / want, n * d / denominator, rel_tol=1e-3):
            return (f". Your variance is exactly the expected one × {n * d}/{denominator}: you "
                    f"divided by {text} instead of N·d = {n * d}")
    return ""


def _compare_m_step(learner_fn: Callable, x: torch.Tensor, resp: torch.Tensor,
                    min_variance: float | None = None, *, exact_clamp: bool = False) -> None:
    """Compare weights, means and variance (in that order) with the float64 reference; with
    ``exact_clamp`` the variance is compared relatively (``atol=0``), so that a variance of
    ``1e-14`` is not mistaken for a clamped ``1e-6``."""
    from . import theory

    kwargs = {} if min_variance is None else {"min_variance": min_variance}
    want = _m_step_reference(x, resp, **kwargs)
    x_copy, resp_copy = x.clone(), resp.clone()
    try:
        got = learner_fn(x_copy, resp_copy, **kwargs)
    except ValueError as err:
        if "variance" not in str(err):
            raise
        raise CheckFailed(f"your code raised ValueError: {err}. Hint: "
                          f"{_M_HINTS['variance']}") from err
    if not (torch.equal(x_copy, x) and torch.equal(resp_copy, resp)):
        raise CheckFailed("your m_step modified x or resp in place; work on new tensors")
    if not isinstance(got, theory.GaussianMixture):
        raise CheckFailed(f"expected a theory.GaussianMixture(means, variance, weights), got "
                          f"{type(got).__name__}")
    n, d = x.shape
    k = resp.shape[1]
    for name, shape in (("weights", (k,)), ("means", (k, d)), ("variance", ())):
        value = getattr(got, name)
        if not isinstance(value, torch.Tensor) or tuple(value.shape) != shape:
            found = tuple(value.shape) if isinstance(value, torch.Tensor) else type(value).__name__
            raise CheckFailed(f"{name}: expected shape {shape}, got {found}"
                              + (" (one variance shared by all components and coordinates)"
                                 if name == "variance" else ""))
    for name in ("weights", "means", "variance"):
        atol, rtol = (0.0, 1e-3) if exact_clamp and name == "variance" else (1e-5, 1e-4)
        try:
            compare(name, getattr(got, name), getattr(want, name), atol=atol, rtol=rtol)
        except CheckFailed as err:
            detail = (_variance_diagnosis(float(got.variance), float(want.variance), n, d)
                      if name == "variance" else "")
            raise CheckFailed(f"{err}{detail}. Hint: {_M_HINTS[name]}") from None


def _soft(logits: torch.Tensor) -> torch.Tensor:
    return torch.softmax(logits, dim=1)


def m_step(learner_fn: Callable) -> None:
    """Check ``learner_fn(x, resp, min_variance=1e-6) -> theory.GaussianMixture`` against
    ``sslkit.theory.m_step``.

    The M-step of EM for a mixture of spherical Gaussians with one shared variance (Dempster,
    Laird & Rubin, 1977): ``x`` ``(N, d)``, responsibilities ``resp`` ``(N, K)`` → weights
    ``N_k / N``, means ``Σ_i r_ik x_i / N_k`` and the variance
    ``Σ_ik r_ik ||x_i − μ_k||² / (N·d)`` (at least ``min_variance``). The reference is computed
    in float64. Cases (6): soft responsibilities (a wrong weight, mean or variance is named,
    with its formula; a variance off by a known denominator such as ``(N − 1)·d`` says so); the
    lecture's 1-d example; hard (one-hot) responsibilities, the k-means update; a single point
    (the variance is 0 and must be clamped); ``min_variance`` passed by keyword; and a run under
    ``torch.no_grad()`` that leaves its inputs unchanged.
    """
    x = randn(12, 3, seed=40, scale=2.0)
    resp = _soft(randn(12, 3, seed=41, scale=2.0))
    x4 = torch.tensor([[-2.0], [-1.0], [1.0], [2.0]])
    resp4 = torch.stack([1 - torch.sigmoid(2 * x4[:, 0]), torch.sigmoid(2 * x4[:, 0])], 1)
    hard = torch.nn.functional.one_hot(torch.arange(12) % 3, 3).float()
    tight = randn(5, 3, seed=42, scale=0.01) + 4.0

    def no_grad() -> None:
        with torch.no_grad():
            _compare_m_step(learner_fn, x, resp)

    run_checks("m_step", {
        "soft responsibilities: N=12, d=3, K=3": lambda: _compare_m_step(learner_fn, x, resp),
        "the lecture's four points in 1-d: centres ±1.3448, variance 0.6914, weights 0.5":
            lambda: _compare_m_step(learner_fn, x4, resp4),
        "hard (one-hot) responsibilities: the k-means update":
            lambda: _compare_m_step(learner_fn, x, hard),
        "a single point: every centre moves onto it, σ² = 0 is clamped to min_variance":
            lambda: _compare_m_step(learner_fn, x[:1], resp[:1], exact_clamp=True),
        "min_variance=0.5 passed by keyword (tight data: spread 1e-4)":
            lambda: _compare_m_step(learner_fn, tight, _soft(randn(5, 2, seed=43)), 0.5),
        "EM needs no gradients: runs under torch.no_grad(), inputs unchanged": _with_hint(
            no_grad, "the M-step is a formula (weighted averages): no .backward(), "
            "torch.autograd or optimiser"),
    })


def _pipeline_data():
    """A small informative problem (d=6, K=3) and its uninformative twin, seeded: unlabeled
    ``(m=150, d)``, labeled ``(n=12, d)`` and test ``(60, d)`` points, plus 3 trials at once."""
    from . import theory

    problem = theory.make_problem(6, 3, 4.0)
    twin = theory.make_problem(6, 3, 4.0, task="orthogonal")
    x_unl, _ = problem.sample(150, seed=50)
    x_lab, y_lab = problem.sample(12, seed=51)
    x_test, _ = problem.sample(60, seed=52)
    tx_lab, ty_lab = twin.sample(12, seed=53)
    bx_unl, _ = problem.sample(80, 3, seed=54)
    bx_lab, by_lab = problem.sample(9, 3, seed=55)
    return {"x_unl": x_unl[0], "x_lab": x_lab[0], "y_lab": y_lab[0], "x_test": x_test[0],
            "tx_lab": tx_lab[0], "ty_lab": ty_lab[0], "bx_unl": bx_unl, "bx_lab": bx_lab,
            "by_lab": by_lab}


_PIPELINE_HINT = ("fit ψ on exactly what the classifier feeds it when it predicts "
                  "(PretrainedClassifier.head_input): for head='logistic' the centred "
                  "log-posterior lp − lp.mean(-1, keepdim=True), lp = theory.log_posterior("
                  "x_labeled, mixture), with theory.fit_logistic(features, y_labeled, "
                  "num_classes, l2=l2); for head='vote' the posterior lp.exp() with "
                  "theory.fit_vote_head(posterior, y_labeled, num_classes)")


def pretrain_then_erm(learner_fn: Callable) -> None:
    """Check ``learner_fn(x_unlabeled, x_labeled, y_labeled, num_components, num_classes, *,
    head="logistic", l2=1.0, em_iters=100, n_init=2, seed=0, mixture=None)`` against
    ``sslkit.theory.pretrain_then_erm``.

    The two-stage learner of *On the Provable Advantage of Unsupervised Pretraining* (2023, arXiv
    2303.01566): ``φ`` = a mixture fit by ``theory.fit_em`` on the unlabeled points only, ``ψ`` =
    a head fit by ERM on ``φ`` of the labeled points; it returns a
    ``theory.PretrainedClassifier(mixture, head)``. Cases (9) on a seeded ``d = 6``, ``K = 3``
    problem: the returned types and the head's input size (``K`` features, not ``d``); the
    mixture is ``fit_em`` on ``x_unlabeled`` alone with the given ``em_iters``, ``n_init`` and
    ``seed``; ``p̂(y | x)`` on test points; ``l2`` and ``seed`` passed on; ``head="vote"``; a
    given ``mixture`` (no EM, ``x_unlabeled=None``); three trials at once ``(T, m, d)``; a single
    labeled example; and the uninformative twin (2 classes from 3 components).
    """
    from . import theory

    data = _pipeline_data()
    runs: dict = {}

    def run(key, args, **kwargs):
        if key not in runs:
            got = learner_fn(*[_clone(a) for a in args], **kwargs)
            want = theory.pretrain_then_erm(*[_clone(a) for a in args], **kwargs)
            runs[key] = (got, want)
        return runs[key]

    base = (data["x_unl"], data["x_lab"], data["y_lab"], 3, 3)

    def structure(key="base", args=base, head="logistic", **kwargs):
        got, want = run(key, args, head=head, **kwargs)
        if not isinstance(got, theory.PretrainedClassifier):
            raise CheckFailed(f"expected a theory.PretrainedClassifier(mixture, head), got "
                              f"{type(got).__name__}")
        if not isinstance(got.mixture, theory.GaussianMixture):
            raise CheckFailed(f"the classifier's mixture is a {type(got.mixture).__name__}, "
                              "expected the theory.GaussianMixture fit by EM")
        vote = head == "vote"
        kind, fit = ((theory.VoteHead, "fit_vote_head") if vote
                     else (theory.LogisticModel, "fit_logistic"))
        if not isinstance(got.head, kind):
            raise CheckFailed(f"head={head!r}: the classifier's head is a "
                              f"{type(got.head).__name__}, expected a theory.{kind.__name__} "
                              f"(from theory.{fit})")
        part = "table" if vote else "weight"
        shape, expected = (tuple(getattr(h.head, part).shape) for h in (got, want))
        if shape != expected:
            raise CheckFailed(
                f"the head's {part} has shape {shape}, expected {expected}: ψ reads φ(x), the "
                f"K = {expected[0]} numbers of the representation (rows), and names "
                "num_classes classes (columns); a head fit on raw x has d rows")
        return got, want

    def same_mixture(key="base", args=base, **kwargs):
        got, want = structure(key, args, **kwargs)
        try:
            for name in ("weights", "means", "variance"):
                compare(f"mixture.{name}", getattr(got.mixture, name),
                        getattr(want.mixture, name), atol=1e-5, rtol=1e-4)
        except CheckFailed as err:
            raise CheckFailed(
                f"{err}. Hint: pretraining sees the unlabeled points only: mixture = "
                "theory.fit_em(x_unlabeled, num_components, iters=em_iters, n_init=n_init, "
                "seed=seed).mixture; the labeled points are not part of it") from None

    def same_predictions(key="base", args=base, x_test=None, **kwargs):
        got, want = structure(key, args, **kwargs)
        x_test = data["x_test"] if x_test is None else x_test
        try:
            compare("p̂(y | x) on the test points", got.predict_proba(x_test),
                    want.predict_proba(x_test), atol=1e-4, rtol=1e-3)
        except CheckFailed as err:
            raise CheckFailed(f"{err}. Hint: {_PIPELINE_HINT}") from None

    def given_mixture():
        fitted = theory.fit_em(data["x_unl"], 3, seed=7).mixture
        got, _ = structure("given", (None, data["x_lab"], data["y_lab"], 3, 3), mixture=fitted)
        if got.mixture is not fitted and not _same_mixture(fitted, got.mixture):
            raise CheckFailed("with mixture= given, the classifier must use that mixture "
                              "(no EM: x_unlabeled may be None)")
        same_predictions("given", (None, data["x_lab"], data["y_lab"], 3, 3), mixture=fitted)

    batched = (data["bx_unl"], data["bx_lab"], data["by_lab"], 3, 3)
    twin = (data["x_unl"], data["tx_lab"], data["ty_lab"], 3, 2)
    run_checks("pretrain_then_erm", {
        "returns theory.PretrainedClassifier(mixture, LogisticModel) whose head reads K=3 "
        "features": structure,
        "the mixture is theory.fit_em on the 150 unlabeled points only": same_mixture,
        "logistic head: p̂(y | x) on 60 test points": same_predictions,
        "l2=0.1, em_iters=20, n_init=1, seed=3 are passed on": lambda: (
            same_mixture("kw", base, l2=0.1, em_iters=20, n_init=1, seed=3),
            same_predictions("kw", base, l2=0.1, em_iters=20, n_init=1, seed=3)),
        "head='vote': a theory.VoteHead fit on the posterior": lambda: same_predictions(
            "vote", base, head="vote"),
        "mixture= given: no EM, x_unlabeled=None": given_mixture,
        "three trials at once: (3, 80, 6), (3, 9, 6), (3, 9)": lambda: (
            same_mixture("batched", batched),
            same_predictions("batched", batched, x_test=data["x_test"])),
        "a single labeled example (n=1)": lambda: same_predictions(
            "one", (data["x_unl"], data["x_lab"][:1], data["y_lab"][:1], 3, 3)),
        "the uninformative twin: K=3 components, num_classes=2": lambda: same_predictions(
            "twin", twin),
    })
