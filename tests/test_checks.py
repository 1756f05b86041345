"""`sslkit.checks`: the self-check core (compare, symmetry, gradient flow, runner) and softmax."""

from __future__ import annotations

import functools
import importlib
import pkgutil
import re

import numpy as np
import pytest
import torch
from notebook_helpers import assert_passed, failed_at

import sslkit
from sslkit import checks
from sslkit.checks import CheckFailed


def correct_softmax(x):
    z = x - x.max(dim=-1, keepdim=True).values
    return z.exp() / z.exp().sum(dim=-1, keepdim=True)


def naive_softmax(x):
    return x.exp() / x.exp().sum(dim=-1, keepdim=True)


# ---------------------------------------------------------------------------- softmax example
def test_correct_softmax_passes_and_says_public_checks_passed(capsys):
    checks.softmax(correct_softmax)
    out = capsys.readouterr().out
    assert_passed(checks.softmax, out)
    assert "large logits" in out and "batch of 1" in out and "ties" in out
    assert "all tests passed" not in out.lower()


def test_naive_softmax_fails_on_large_logits_naming_the_case_and_the_nan(capsys):
    with pytest.raises(CheckFailed) as info:
        checks.softmax(naive_softmax)
    msg = str(info.value)
    assert "large logits" in msg and "nan" in msg and "index (0, 0)" in msg
    assert msg.startswith(failed_at(checks.softmax, 4, "large logits")), msg
    out = capsys.readouterr().out
    assert "✗ large logits" in out and "public checks passed" not in out


def test_softmax_over_the_wrong_dim_fails_naming_the_first_index_and_both_values():
    with pytest.raises(CheckFailed) as info:
        checks.softmax(lambda x: torch.softmax(x, dim=0))
    msg = str(info.value)
    expected = torch.softmax(checks.randn(4, 10, seed=0), dim=-1)[0, 0].item()
    got = torch.softmax(checks.randn(4, 10, seed=0), dim=0)[0, 0].item()
    assert "random logits (4, 10)" in msg and "first at index (0, 0)" in msg
    assert f"got {got:.6g}, expected {expected:.6g}" in msg


def test_softmax_with_the_wrong_shape_fails_naming_both_shapes():
    with pytest.raises(CheckFailed, match=r"shape \(4,\) differs from the expected \(4, 10\)"):
        checks.softmax(lambda x: correct_softmax(x).max(dim=-1).values)


def test_a_stub_gives_the_friendly_not_implemented_message(capsys):
    def stub(logits):
        raise NotImplementedError("subtract the row maximum, exponentiate, normalise")

    with pytest.raises(NotImplementedError) as info:
        checks.softmax(stub)
    assert not isinstance(info.value, AssertionError)
    assert str(info.value) == ("softmax: not implemented yet: subtract the row maximum, "
                               "exponentiate, normalise")
    assert "not implemented yet" in capsys.readouterr().out


def test_detached_output_fails_the_gradient_case():
    with pytest.raises(CheckFailed, match="gradient flows.*cut off from the inputs"):
        checks.softmax(lambda x: correct_softmax(x).detach())


def test_in_place_modification_of_the_input_is_reported():
    def in_place(x):
        x -= x.max(dim=-1, keepdim=True).values
        return x.exp() / x.exp().sum(dim=-1, keepdim=True)

    with pytest.raises(CheckFailed, match="modified its argument 0 in place"):
        checks.softmax(in_place)


def test_an_exception_in_learner_code_names_the_case_and_the_exception():
    with pytest.raises(CheckFailed, match=r"'random logits \(4, 10\)' failed: your code raised "
                                          r"TypeError: boom") as info:
        checks.softmax(lambda x: (_ for _ in ()).throw(TypeError("boom")))
    assert isinstance(info.value.__cause__, TypeError)


# ---------------------------------------------------------------------------- compare
def test_compare_accepts_values_within_tolerance_and_reports_the_first_bad_index():
    want = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
    checks.compare("x", want + 1e-7, want)
    got = want.clone()
    got[1, 0] = 3.5
    got[1, 1] = 5.0
    with pytest.raises(CheckFailed) as info:
        checks.compare("x", got, want, atol=1e-3, rtol=0)
    assert str(info.value) == ("x: values differ at 2 of 4 positions; first at index (1, 0): "
                               "got 3.5, expected 3 (largest difference 1; tolerance "
                               "atol=0.001, rtol=0)")


@pytest.mark.parametrize("got, match", [
    (np.ones(3, dtype=np.float32), r"expected a torch.Tensor, got ndarray \(convert with"),
    ([1.0, 1.0, 1.0], "expected a torch.Tensor, got list"),
    (torch.ones(1, 3), r"shape \(1, 3\) differs from the expected \(3,\)"),
    (torch.ones(3, dtype=torch.float64), "dtype torch.float64 differs from the expected "
                                         "torch.float32"),
    (torch.tensor([1.0, float("inf"), 1.0]), r"got inf at index \(1,\) where 1 was expected"),
    (torch.tensor([1.0, 1.0, float("nan")]), r"got nan at index \(2,\) .*1 of 3 values"),
])
def test_compare_names_type_shape_dtype_and_non_finite_values(got, match):
    with pytest.raises(CheckFailed, match=match):
        checks.compare("x", got, torch.ones(3))


def test_compare_allows_nan_where_the_reference_has_nan_and_can_ignore_dtype():
    want = torch.tensor([1.0, float("nan")])
    checks.compare("x", want.clone(), want)
    checks.compare("x", want.double(), want, check_dtype=False)


def test_compare_integer_tensors_exactly():
    checks.compare("labels", torch.tensor([0, 1, 2]), torch.tensor([0, 1, 2]))
    with pytest.raises(CheckFailed, match=r"first at index \(2,\): got 3, expected 2$"):
        checks.compare("labels", torch.tensor([0, 1, 3]), torch.tensor([0, 1, 2]))


def test_compare_recurses_into_tuples_dicts_and_numbers():
    checks.compare("out", (torch.zeros(2), 1.0), (torch.zeros(2), 1.0 + 1e-9))
    with pytest.raises(CheckFailed, match=r"out\[1\]: got 1.5, expected 1"):
        checks.compare("out", (torch.zeros(2), 1.5), (torch.zeros(2), 1.0))
    with pytest.raises(CheckFailed, match="expected 2 items, got 1"):
        checks.compare("out", (torch.zeros(2),), (torch.zeros(2), 1.0))
    with pytest.raises(CheckFailed, match=r"keys differ \(missing \['b'\], unexpected \['c'\]\)"):
        checks.compare("logs", {"a": 1.0, "c": 2.0}, {"a": 1.0, "b": 2.0})
    with pytest.raises(CheckFailed, match=r"logs\['a'\]: got nan"):
        checks.compare("logs", {"a": float("nan")}, {"a": 1.0})
    checks.compare("loss", torch.tensor(0.5), 0.5)
    with pytest.raises(CheckFailed, match="got 'a', expected 'b'"):
        checks.compare("name", "a", "b")


@pytest.mark.parametrize("kw, match", [({"atol": -1.0}, "atol=-1.0"), ({"rtol": -0.1}, "rtol")])
def test_compare_rejects_negative_tolerances(kw, match):
    with pytest.raises(ValueError, match=match):
        checks.compare("x", torch.ones(1), torch.ones(1), **kw)


# ---------------------------------------------------------------------------- symmetry, gradient
def test_check_symmetric_names_the_first_asymmetric_pair():
    m = checks.randn(4, 4, seed=0)
    checks.check_symmetric("sim", m + m.T)
    bad = m + m.T
    bad[0, 2] += 1.0
    with pytest.raises(CheckFailed, match=r"sim: not symmetric: M\(0, 2\)=.* but M\(2, 0\)="):
        checks.check_symmetric("sim", bad)
    with pytest.raises(CheckFailed, match=r"square matrix .* got shape \(2, 3\)"):
        checks.check_symmetric("sim", torch.ones(2, 3))


def test_check_gradient_flow_reports_none_zero_and_passes_a_real_gradient():
    x = checks.randn(3, 4, seed=0)
    checks.check_gradient_flow("f", lambda t: t.tanh(), x)
    with pytest.raises(CheckFailed, match="is all zero"):
        checks.check_gradient_flow("f", lambda t: t * 0.0, x)
    with pytest.raises(CheckFailed, match="no gradient reached input 1"):
        checks.check_gradient_flow("f", lambda a, b: a * 2.0, x, x.clone())
    with pytest.raises(CheckFailed, match="all zero"):  # a plain sum would hide this case
        checks.check_gradient_flow("f", lambda t: t.round() + t.detach(), x)
    with pytest.raises(ValueError, match="floating-point tensor"):
        checks.check_gradient_flow("f", lambda t: t, torch.arange(3))


def test_gradient_flow_uses_random_weights_so_softmax_is_not_flagged_as_zero():
    # sum(softmax(x)) is constant, so a plain .sum().backward() would give a zero gradient
    x = checks.randn(2, 5, seed=0).requires_grad_(True)
    torch.softmax(x, -1).sum().backward()
    # 0 but for rounding: p·(1 - Σp) with Σp of 5 rounded probabilities (exp ≤ 1 ulp, divide)
    # ≤ 4·EPS from 1, plus the subtraction: ≤ 4.5·2**-23 = 5.4e-7 < 1e-6
    assert x.grad.abs().max() < 1e-6
    checks.check_gradient_flow("softmax", lambda t: torch.softmax(t, -1), x.detach())


# ---------------------------------------------------------------------------- runner
def test_run_checks_stops_at_the_first_failure_and_accepts_plain_asserts(capsys):
    ran = []

    def fail():
        ran.append("b")
        assert 1 == 2, "one is not two"

    with pytest.raises(CheckFailed, match=r"demo: check 2/3 'second' failed: one is not two"):
        checks.run_checks("demo", [("first", lambda: ran.append("a")), ("second", fail),
                                   ("third", lambda: ran.append("c"))])
    assert ran == ["a", "b"]
    assert capsys.readouterr().out.splitlines() == ["  ✓ first", "  ✗ second"]


def test_run_checks_counts_cases_and_rejects_an_empty_list(capsys):
    checks.run_checks("demo", {"one": lambda: None, "two": lambda: None})
    assert capsys.readouterr().out.endswith("demo: 2 public checks passed.\n")
    with pytest.raises(ValueError, match="at least one"):
        checks.run_checks("demo", {})


def test_with_hint_appends_the_hint_to_a_failure_or_an_exception_but_not_to_a_stub():
    def fails():
        raise CheckFailed("loss: got 2, expected 1")

    def crashes():
        raise TypeError("boom")

    def stub():
        raise NotImplementedError("todo")

    with pytest.raises(CheckFailed, match=r"^loss: got 2, expected 1\. Hint: divide by 2B$"):
        checks.with_hint(fails, "divide by 2B")()
    with pytest.raises(CheckFailed, match=r"^your code raised TypeError: boom\. Hint: h$") as info:
        checks.with_hint(crashes, "h")()
    assert isinstance(info.value.__cause__, TypeError)
    with pytest.raises(NotImplementedError, match="^todo$"):
        checks.with_hint(stub, "h")()
    assert checks.with_hint(fails, None) is fails


def test_mistake_hint_names_the_closest_matching_mistake_or_gives_the_rule():
    mistakes = [(torch.tensor(1.0, dtype=torch.float64), "one"),
                (torch.tensor(1.00005, dtype=torch.float64), "almost one"),
                (torch.tensor([2.0, 3.0], dtype=torch.float64), "a pair")]
    hint = functools.partial(checks.mistake_hint, mistakes=mistakes, rule="rule", atol=1e-4,
                             rtol=0.0)
    assert hint(torch.tensor(1.00004)) == "almost one"        # both match, the closer wins
    assert hint(torch.tensor([0.99999])) == "one"             # a (1,) answer to a scalar case
    assert hint(torch.tensor([2.0, 3.00001])) == "a pair"
    assert hint(torch.tensor(1.5)) == "rule"                  # no mistake within tolerance
    assert hint(torch.tensor([1.0, 1.0, 1.0])) == "rule"      # no mistake of that size
    assert hint(1.0) == "rule"                                # not a tensor


def test_the_small_helpers_for_writing_checks():
    assert checks.format_value(1 / 3) == "0.333333" and checks.format_value(float("nan")) == "nan"
    assert checks.format_value(7) == "7"
    rows = checks.unit_rows(torch.tensor([[3.0, 4.0], [0.0, -2.0]]))
    assert torch.allclose(rows, torch.tensor([[0.6, 0.8], [0.0, -1.0]]))
    x = torch.ones(2, requires_grad=True)
    copied = checks.detached_copy(x)
    assert torch.equal(copied, x) and copied is not x and not copied.requires_grad
    assert checks.detached_copy(5) == 5


def test_randn_is_seeded_and_validates_the_shape():
    assert torch.equal(checks.randn(2, 3, seed=5), checks.randn(2, 3, seed=5))
    assert not torch.equal(checks.randn(2, 3, seed=5), checks.randn(2, 3, seed=6))
    with pytest.raises(ValueError, match=r"shape\[1\]=0"):
        checks.randn(2, 0)


def test_the_package_re_exports_the_framework_and_every_exercise_check():
    """``sslkit.checks`` is a package (``_core`` + one module ``exNN_<topic>`` per exercise,
    whose names never collide with a library module); notebooks only ever write
    ``checks.<name>``, and no private name is re-exported."""
    modules = sorted(m.name for m in pkgutil.iter_modules(checks.__path__))
    assert modules == ["_core", "ex00_protocol", "ex01_theory", "ex02_rotation", "ex03_nt_xent",
                       "ex04_moco", "ex05_clustering", "ex06_dino", "ex07_vicreg",
                       "ex08_masking"]
    library = {m.name for m in pkgutil.iter_modules(sslkit.__path__)}
    assert all(re.fullmatch(r"ex\d\d_[a-z0-9_]+", m) and m not in library for m in modules[1:])
    assert not any(name.startswith("_") and not name.startswith("__") for name in vars(checks)
                   if name not in modules)
    names = []
    for module in modules:
        mod = importlib.import_module(f"sslkit.checks.{module}")
        assert mod.__doc__ and mod.__all__, module
        for name in mod.__all__:
            assert getattr(checks, name) is getattr(mod, name), (module, name)
        names += mod.__all__
    assert sorted(checks.__all__) == sorted(names)
    for name in ("rotation_batch", "nt_xent", "update_queue", "momentum_update", "softmax",
                 "knn_classify", "e_step"):
        assert name in checks.__all__ and callable(getattr(checks, name))
    assert checks.CheckFailed is importlib.import_module("sslkit.checks._core").CheckFailed


def test_a_stub_shows_a_short_message_in_ipython_and_stays_a_not_implemented_error():
    from IPython.core.interactiveshell import InteractiveShell
    from IPython.utils.capture import capture_output

    shell = InteractiveShell.instance()
    try:
        shell.run_cell("import sslkit.checks as checks\n"
                       "def my_softmax(logits):\n"
                       "    raise NotImplementedError('subtract the row maximum')\n")
        with capture_output() as captured:
            result = shell.run_cell("checks.softmax(my_softmax)")
    finally:
        InteractiveShell.clear_instance()
    err = result.error_in_exec
    assert type(err) is NotImplementedError  # the grader detects unfinished work by this name
    assert str(err) == "softmax: not implemented yet: subtract the row maximum"
    shown = [line for line in captured.stdout.splitlines() if line.strip()]
    tb = shown[shown.index("  ✗ random logits (4, 10): not implemented yet") + 1:]
    assert len(tb) <= 4, tb  # not the ~40 lines of library frames
    assert "NotImplementedError" in tb[0] and "subtract the row maximum" in tb[0]
    assert "`my_softmax` (line 3 of its cell)" in tb[1]
    assert not any("_core.py" in line or "Traceback" in line for line in tb)
