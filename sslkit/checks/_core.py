"""The framework of the self-checks: compare results, check gradients, run named cases.

Everything here is re-exported by :mod:`sslkit.checks` (see its docstring for how a check
reads and how to add one); :func:`softmax` is the worked example. The exercise modules build
their checks from these functions only: :func:`with_hint`, :func:`format_value`,
:func:`unit_rows` and :func:`detached_copy` are the small helpers they share, public so that a
new exercise's module uses them the same way.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from numbers import Number

import torch

from .._validate import check_positive_int, check_range

__all__ = [
    "CheckFailed", "compare", "compare_call", "check_symmetric", "check_gradient_flow",
    "run_checks", "randn", "softmax",
    # helpers for writing checks
    "with_hint", "mistake_hint", "format_value", "unit_rows", "detached_copy",
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


def format_value(value) -> str:
    """``value`` as the messages show it: floats with 6 significant digits (``nan`` for NaN),
    anything else with ``str``."""
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
            kind, expected = format_value(got[idx].item()), format_value(want[idx].item())
            raise CheckFailed(
                f"{name}: got {kind} at index {_fmt_index(idx)} where {expected} "
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
               f"at index {_fmt_index(idx)}: got {format_value(got[idx].item())}, expected "
               f"{format_value(want[idx].item())}")
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
            raise CheckFailed(f"{name}: got nan, expected {format_value(reference_out)}")
        if not math.isclose(got, reference_out, rel_tol=rtol, abs_tol=atol) and not (
                math.isnan(got) and math.isnan(reference_out)):
            raise CheckFailed(f"{name}: got {format_value(got)}, expected "
                              f"{format_value(reference_out)} "
                              f"(tolerance atol={atol:g}, rtol={rtol:g})")
    elif learner_out != reference_out:
        raise CheckFailed(f"{name}: got {learner_out!r}, expected {reference_out!r}")


def detached_copy(value):
    """A detached clone of a tensor, anything else as it is: each side of a comparison gets its
    own copy of the inputs, so that neither can change the other's."""
    return value.detach().clone() if isinstance(value, torch.Tensor) else value


def compare_call(learner_fn: Callable, reference_fn: Callable, *args, name: str = "output",
                 atol: float = 1e-5, rtol: float = 1e-4, check_dtype: bool = True,
                 **kwargs) -> None:
    """Call both functions on copies of the same inputs and :func:`compare` the results.

    Also fails if the learner's function modified a tensor argument in place (the reference and
    the learner each get their own copy, so neither can affect the other).
    """
    want = reference_fn(*map(detached_copy, args), **kwargs)
    learner_args = [detached_copy(a) for a in args]
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
        raise CheckFailed(f"{name}: not symmetric: M{_fmt_index(idx)}="
                          f"{format_value(m[idx].item())} but M{_fmt_index(swapped)}="
                          f"{format_value(m[swapped].item())}")


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
def _not_implemented(title: str, err: NotImplementedError) -> NotImplementedError:
    """A plain ``NotImplementedError`` (the grader and ``pytest.raises`` see that type) whose
    traceback in IPython is three lines, not the library's frames: IPython prints what an
    exception's ``_render_traceback_()`` returns instead of the traceback."""
    detail = str(err) or "your function still raises NotImplementedError"
    short = NotImplementedError(f"{title}: not implemented yet: {detail}")
    tb = err.__traceback__
    while tb is not None and tb.tb_next is not None:  # the frame that raised: the learner's stub
        tb = tb.tb_next
    where = (f"`{tb.tb_frame.f_code.co_name}` (line {tb.tb_lineno} of its cell)" if tb is not None
             else "your function")
    lines = [f"\x1b[0;31mNotImplementedError\x1b[0m: {short}",
             f"Your code is not written yet: {where} still raises NotImplementedError.",
             "Replace that `raise NotImplementedError(...)` line with your code, run its cell, "
             "then run this check again."]
    short._render_traceback_ = lambda: lines
    return short


def run_checks(title: str, cases) -> None:
    """Run named cases in order, one printed line each, then ``"<title>: N public checks passed."``.

    ``cases`` is a dict (or an iterable of pairs) mapping a case name, e.g.
    ``"batch of 1 (1, 7)"``, to a function of no argument that raises on a difference
    (:class:`CheckFailed` or any ``AssertionError``). The first failure raises
    :class:`CheckFailed` naming the case and the difference; a ``NotImplementedError`` from the
    learner's code is re-raised as ``NotImplementedError("<title>: not implemented yet: ...")``
    whose IPython traceback is a three-line message (where the stub is, what to do);
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
            raise _not_implemented(title, err) from None
        except AssertionError as err:
            print(f"  ✗ {name}")
            raise CheckFailed(f"{title}: check {i}/{n} '{name}' failed: {err}") from None
        except Exception as err:
            print(f"  ✗ {name}: {type(err).__name__}")
            raise CheckFailed(f"{title}: check {i}/{n} '{name}' failed: your code raised "
                              f"{type(err).__name__}: {err}") from err
        print(f"  ✓ {name}")
    print(f"{title}: {n} public checks passed.")


# ---------------------------------------------------------------------------- case helpers
def with_hint(case: Callable[[], None], hint: str | None) -> Callable[[], None]:
    """Wrap a case so that a failure (or an exception from the learner's code) ends with a hint.

    ``case`` is a function of no argument as :func:`run_checks` takes it; the returned case
    re-raises its :class:`CheckFailed` (or any ``AssertionError``) as ``"<message>. Hint: <hint>"``
    and any other exception as ``"your code raised <type>: <message>. Hint: <hint>"``;
    ``NotImplementedError`` passes through untouched. A falsy ``hint`` returns ``case`` itself.
    """
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


def mistake_hint(got, mistakes, rule: str, *, atol: float, rtol: float) -> str:
    """The hint for a wrong answer: ``mistakes`` pairs the output of each usual mistake (a
    tensor, in float64 on the CPU) with its explanation; return the explanation of the mistake
    ``got`` equals within ``atol`` and ``rtol`` (the closest one if several do), else ``rule``
    (the correct formula in words). ``got`` that is not a tensor of the mistakes' size gets
    ``rule``."""
    if not isinstance(got, torch.Tensor):
        return rule
    value = got.detach().double().cpu()
    close = [(float((value.reshape(wrong.shape) - wrong).abs().max()), why)
             for wrong, why in mistakes if value.numel() == wrong.numel()
             and torch.allclose(value.reshape(wrong.shape), wrong, atol=atol, rtol=rtol)]
    return min(close, key=lambda pair: pair[0])[1] if close else rule


def unit_rows(x: torch.Tensor) -> torch.Tensor:
    """Rows of ``x`` ``(N, D)`` scaled to unit length."""
    return x / x.norm(dim=1, keepdim=True)


# ---------------------------------------------------------------------------- worked example
def softmax(learner_fn: Callable[[torch.Tensor], torch.Tensor]) -> None:
    """Check ``learner_fn(logits (..., C)) -> probabilities (..., C)`` against ``torch.softmax``.

    The softmax is taken over the last dimension. Cases (6): random logits, a batch of one, a 3-d
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
