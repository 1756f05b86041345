"""Exercise 04 (MoCo's queue and momentum encoder): its public checks, notebooks and grading.

* ``checks.update_queue`` and ``checks.momentum_update`` pass correct answers (the solution's,
  independent formulations and the library's) and fail deliberately wrong ones (a pointer that
  does not wrap, slicing without wrap-around, starting over at row 0, a queue rebound instead of
  updated, keys not detached; ``m`` on the query encoder, the query encoder updated, buffers
  averaged, no ``torch.no_grad()``, an update that does not stick), naming the case and the
  mistake;
* the momentum check's reference is ``methods.base.ema_update_``, exactly what
  ``MoCo.on_step_end`` does;
* the generated exercise, executed unsolved, raises only ``NotImplementedError``; the solution
  executes without error (public and hidden tests pass) and is stored executed, in order;
* one ``sslkit.grade`` run on submissions built from the exercise gives full points to the
  correct answers and takes the points of exactly the cell whose answer is wrong.

The wrong answers are source strings: the same text is ``exec``-ed for the checks and pasted
into the answer cells of the submissions.
"""

from __future__ import annotations

import copy

import pytest
import torch
from notebook_helpers import (
    Exercise,
    assert_passed,
    by_id,
    expected_grades,
    failed_at,
    graded_errors,
    passed,
)

from sslkit import checks, losses, methods, models
from sslkit.checks import CheckFailed
from sslkit.checks.ex04_moco import _cnn, _encoders, _mlp
from sslkit.methods import base
from sslkit.methods.base import ema_update_

EX = Exercise("04_contrastive_moco_supcon", {"torch": torch})
NAME = EX.name
ANSWERS = ("queue_solution", "momentum_solution")


# ---------------------------------------------------------------------------- answers
Q_HEAD = """\
def update_queue(queue, keys, ptr):
    size, b = queue.shape[0], keys.shape[0]
    if b > size or not 0 <= ptr < size:
        raise ValueError("bad arguments")
"""
Q_LOOP = Q_HEAD + """\
    # an independent formulation: one row at a time, under no_grad
    with torch.no_grad():
        for i in range(b):
            queue[(ptr + i) % size].copy_(keys[i])
    return int((ptr + b) % size)
"""
Q_POINTER_NOT_WRAPPING = Q_HEAD + """\
    queue[(ptr + torch.arange(b)) % size] = keys.detach().to(queue.dtype)
    return ptr + b
"""
Q_SLICE = Q_HEAD + """\
    queue[ptr:ptr + b] = keys.detach()
    return (ptr + b) % size
"""
Q_RESTART = Q_HEAD + """\
    if ptr + b > size:  # no room left at the end: start over at row 0
        ptr = 0
    queue[ptr:ptr + b] = keys.detach()
    return (ptr + b) % size
"""
Q_REBOUND = Q_HEAD + """\
    queue = queue.clone()
    queue[(ptr + torch.arange(b)) % size] = keys.detach().to(queue.dtype)
    return (ptr + b) % size
"""
Q_NOT_DETACHED = Q_HEAD + """\
    queue[(ptr + torch.arange(b)) % size] = keys.to(queue.dtype)
    return (ptr + b) % size
"""

M_HEAD = "def momentum_update(key_encoder, query_encoder, m):\n"
M_COPY = M_HEAD + """\
    # an independent formulation: named parameters, copy_ of the weighted average
    query = dict(query_encoder.named_parameters())
    with torch.no_grad():
        for name, p_k in key_encoder.named_parameters():
            p_k.copy_(m * p_k + (1 - m) * query[name])
"""
PAIRS = "zip(key_encoder.parameters(), query_encoder.parameters())"
M_SWAPPED = M_HEAD + f"""\
    with torch.no_grad():
        for p_k, p_q in {PAIRS}:
            p_k.copy_((1 - m) * p_k + m * p_q)
"""
M_UPDATES_QUERY = M_HEAD + f"""\
    with torch.no_grad():
        for p_k, p_q in {PAIRS}:
            p_q.mul_(m).add_(p_k, alpha=1 - m)
"""
M_STATE_DICT = M_HEAD + """\
    with torch.no_grad():
        query = query_encoder.state_dict()
        for name, value in key_encoder.state_dict().items():
            if value.is_floating_point():
                value.mul_(m).add_(query[name], alpha=1 - m)
"""
M_NO_NO_GRAD = M_HEAD + f"""\
    for p_k, p_q in {PAIRS}:
        p_k.copy_(m * p_k + (1 - m) * p_q)
"""
M_LOCAL_NAME = M_HEAD + f"""\
    for p_k, p_q in {PAIRS}:
        p_k = m * p_k + (1 - m) * p_q
"""
M_NEW_PARAMETERS = M_HEAD + """\
    query = dict(query_encoder.named_parameters())
    for name, p_k in list(key_encoder.named_parameters()):
        module_name, _, attr = name.rpartition(".")
        module = key_encoder.get_submodule(module_name)
        new = (m * p_k + (1 - m) * query[name]).detach()
        setattr(module, attr, torch.nn.Parameter(new, requires_grad=p_k.requires_grad))
"""


# ------------------------------------------------------------------------------- the checks
@pytest.mark.parametrize("check, source", [
    (checks.update_queue, "queue_solution"),
    (checks.update_queue, Q_LOOP),
    (checks.update_queue, losses.update_queue),
    (checks.momentum_update, "momentum_solution"),
    (checks.momentum_update, M_COPY),
    (checks.momentum_update, ema_update_),
], ids=["q_solution", "q_loop", "q_library", "m_solution", "m_copy", "m_library"])
def test_correct_answers_pass_the_public_checks(check, source, capsys):
    check(EX.define(source, check.__name__))
    assert_passed(check, capsys.readouterr().out)


WRONG = [  # (check, source, the case that fails: number and name, words of the message)
    (checks.update_queue, Q_POINTER_NOT_WRAPPING, 3, "wrap-around",
     ["returned pointer 9, expected (6 + 3) % 8 = 1", "the pointer must wrap around too"]),
    (checks.update_queue, Q_SLICE, 3, "wrap-around",
     ["your code raised RuntimeError", "(ptr + torch.arange(B)) % Q"]),
    (checks.update_queue, Q_RESTART, 3, "wrap-around",
     ["expected rows [6, 7, 0] to hold keys 0…2", "0: key 0, 1: key 1, 2: key 2, 3: old",
      "you started over at row 0, but the reference wraps around"]),
    (checks.update_queue, Q_REBOUND, 1, "Q=8, B=3, ptr=0",
     ["the queue passed in is unchanged: update it in place"]),
    (checks.update_queue, Q_NOT_DETACHED, 7, "keys that require grad",
     ["the queue now requires grad", "keys.detach()"]),
    (checks.momentum_update, M_SWAPPED, 1, "m=0.9",
     ["key parameter '0.weight': values differ", "m and 1 − m are swapped",
      "m multiplies the key encoder's OWN parameters"]),
    (checks.momentum_update, M_UPDATES_QUERY, 1, "m=0.9",
     ["the query encoder's '0.weight' changed", "updates its FIRST argument"]),
    (checks.momentum_update, M_STATE_DICT, 1, "m=0.9",
     ["the key encoder's buffer '1.running_mean' changed", "not state_dict()"]),
    (checks.momentum_update, M_NO_NO_GRAD, 1, "m=0.9",
     ["now has requires_grad=True, grad_fn=CopyBackwards", "torch.no_grad()"]),
    (checks.momentum_update, M_LOCAL_NAME, 1, "m=0.9",
     ["values differ", "the key encoder did not move", "only rebinds a local name"]),
    (checks.momentum_update, M_NEW_PARAMETERS, 1, "m=0.9",
     ["parameter '0.weight' is a new object", "in place"]),
]


@pytest.mark.parametrize("check, source, i, case, words", WRONG, ids=[
    "q_pointer_not_wrapping", "q_slice", "q_restart", "q_rebound", "q_not_detached",
    "m_swapped", "m_updates_query", "m_state_dict", "m_no_no_grad", "m_local_name",
    "m_new_parameters"])
def test_wrong_answers_fail_naming_the_case_and_the_mistake(check, source, i, case, words,
                                                            capsys):
    with pytest.raises(CheckFailed) as info:
        check(EX.define(source, check.__name__))
    msg = str(info.value)
    assert msg.startswith(failed_at(check, i, case)), msg
    for word in words:
        assert word in msg, (word, msg)
    assert "public checks passed" not in capsys.readouterr().out


def test_key_parameters_that_require_grad_need_no_grad():
    """An update without ``torch.no_grad()`` that detaches the query's parameters passes while
    the key encoder does not require grad, but PyTorch refuses it in place on parameters that
    do: the case that covers this names the fix."""
    detached = M_HEAD + f"""\
    for p_k, p_q in {PAIRS}:
        p_k.mul_(m).add_(p_q.detach(), alpha=1 - m)
"""
    with pytest.raises(CheckFailed) as info:
        checks.momentum_update(EX.define(detached, "momentum_update"))
    msg = str(info.value)
    assert msg.startswith(failed_at(checks.momentum_update, 7,
                                    "key parameters that require grad")), msg
    assert "your code raised RuntimeError" in msg and "under torch.no_grad()" in msg, msg


@pytest.mark.parametrize("check, name", [(checks.update_queue, "update_queue"),
                                         (checks.momentum_update, "momentum_update")])
def test_a_stub_gives_only_the_friendly_not_implemented_error(check, name):
    def stub(*args):
        raise NotImplementedError("write the keys")

    with pytest.raises(NotImplementedError) as info:
        check(stub)
    assert not isinstance(info.value, AssertionError)
    assert str(info.value) == f"{name}: not implemented yet: write the keys"


def test_the_momentum_reference_is_moco_on_step_end(monkeypatch):
    """The check computes its expected key encoder with ``ema_update_``, and one
    ``MoCo.on_step_end`` is ``ema_update_`` of the key backbone and the key projector, nothing
    more: so the check grades exactly the library's update."""
    used = []

    def spy(target, online, momentum):
        used.append(momentum)
        ema_update_(target, online, momentum)

    monkeypatch.setattr(base, "ema_update_", spy)
    checks.momentum_update(ema_update_)
    assert used, "the check did not compute its reference with methods.base.ema_update_"
    monkeypatch.undo()

    moco = methods.MoCo(models.SmallCNN((4, 8)), proj_hidden=8, proj_dim=4, queue_size=8,
                        momentum=0.9)
    with torch.no_grad():
        for p in [*moco.backbone.parameters(), *moco.projector.parameters()]:
            p.add_(torch.randn(p.shape, generator=torch.Generator().manual_seed(p.numel())))
    mine = copy.deepcopy(moco)
    moco.on_step_end(0, None)
    ema_update_(mine.key_backbone, mine.backbone, 0.9)
    ema_update_(mine.key_projector, mine.projector, 0.9)
    want = moco.state_dict()
    for name, value in mine.state_dict().items():
        assert torch.equal(value, want[name]), name


def test_the_encoders_of_the_momentum_check_differ_in_parameters_and_buffers():
    for make in (_mlp, _cnn):
        key, query = _encoders(make, 0)
        assert not any(p.requires_grad for p in key.parameters())
        assert all(p.requires_grad for p in query.parameters())
        for (name, a), b in zip(key.state_dict().items(), query.state_dict().values(),
                                strict=True):
            if a.is_floating_point():
                assert not torch.equal(a, b), name


# ---------------------------------------------------------------------------- the notebooks
def test_the_unsolved_exercise_raises_only_not_implemented_error(tmp_path):
    nb, errors, checked = EX.run_unsolved(tmp_path)
    # each part's example, public check and graded cell, Part C's table and Part E's run
    assert len(errors) == 8, errors
    assert [e.split(":")[0] for e in checked] == ["update_queue", "momentum_update"]
    assert by_id(nb, "queue_answer").source == "YOUR ANSWER HERE"


def test_the_solution_passes_every_public_and_hidden_test(tmp_path):
    _, outputs = EX.run_solution(tmp_path)
    for line in (passed(checks.update_queue), passed(checks.momentum_update),
                 "step 4: ptr -> 3 | queue [32, 41, 42, 22, 31]",
                 " 0.999 |                 693 | 3%",
                 "largest loss difference over 150 steps: 0\n"):
        assert line in outputs, line


def test_the_solution_is_stored_executed_in_order_without_errors():
    code = EX.check_stored_executed({"queue_tests": 2, "momentum_tests": 3, "queue_answer": 2})
    assert "torch.set_num_threads(1)" in code[0].source


# ---------------------------------------------------------------------------- grading
SUBMISSIONS = {  # learner → (queue, momentum) answers; None: the solution's answer
    "correct": (None, None),
    "correct_alternative": (Q_LOOP, M_COPY),  # other formulations, also right
    "m_swapped": (None, M_SWAPPED),
    "m_updates_query": (None, M_UPDATES_QUERY),
    "q_pointer_not_wrapping": (Q_POINTER_NOT_WRAPPING, None),
}
CELLS = ("queue_tests", "momentum_tests")
POINTS = {"queue_tests": 2, "momentum_tests": 3}


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    return EX.grade(tmp_path_factory.mktemp("grading_04"), {
        learner: {**dict(zip(ANSWERS, answers, strict=True)),
                  "queue_answer": "Old keys must come from a similar encoder."}
        for learner, answers in SUBMISSIONS.items()})


def test_grading_gives_full_points_to_the_correct_answers_and_takes_the_wrong_cells(graded):
    status, rows, printed, _ = graded
    assert status == 0, printed
    assert rows[0] == ["learner", "exercise", "cell", "points", "max_points", "flags"]
    # a wrong answer fails its public check cell; a pointer that never wraps makes the given
    # demonstration cell raise: "crashed" too
    lost = {"q_": ("queue_tests",), "m_": ("momentum_tests",)}
    assert rows[1:] == expected_grades(NAME, SUBMISSIONS, POINTS, lost,
                                       crashed=("q_pointer_not_wrapping",)), printed


@pytest.mark.parametrize("learner, cell, error", [
    ("m_swapped", "momentum_tests",
     "AssertionError: after 3 updates with m=0.9 the key's weight is 0.999, expected"),
    ("m_updates_query", "momentum_tests",
     "AssertionError: after 3 updates with m=0.9 the key's weight is 0, expected"),
    ("q_pointer_not_wrapping", "queue_tests", "ValueError: bad arguments"),  # ptr=6 at step 4
])
def test_each_wrong_answer_fails_its_graded_cell_and_its_public_check(graded, learner, cell,
                                                                      error):
    check = {"queue_tests": "update_queue", "momentum_tests": "momentum_update"}[cell]
    got, check_errors = graded_errors(graded[3], learner, cell, check)
    assert got.startswith(error), got
    assert check_errors == ["CheckFailed"]
