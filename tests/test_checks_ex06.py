"""The public checks of exercise 06 (DINO's loss and centre update): correct answers pass (the
library's and an independent formulation written with loops), deliberately wrong ones fail and
the message names the mistake.

The answers are source strings ``exec``-ed here, as the exercise tests of lectures 00-05 do, so
that the same text can later be pasted into an exercise notebook's answer cells.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from sslkit import checks, losses
from sslkit.checks import CheckFailed
from sslkit.methods import update_center_

LOSS_LOOPS = """\
def dino_loss(student, teacher, center, student_temp, teacher_temp):
    # an independent formulation: one cross-entropy per pair of different views, in a loop
    p_t = torch.softmax((teacher.detach() - center) / teacher_temp, dim=-1)
    log_p_s = torch.log_softmax(student / student_temp, dim=-1)
    total, pairs = 0.0, 0
    for i in range(teacher.shape[0]):
        for j in range(student.shape[0]):
            if i != j:
                total = total + (-(p_t[i] * log_p_s[j]).sum(-1)).mean()
                pairs += 1
    return total / pairs
"""
LOSS_WRONG = {
    "ignores the centre": LOSS_LOOPS.replace("(teacher.detach() - center)", "teacher.detach()"),
    "swapped the temperatures": LOSS_LOOPS.replace("/ teacher_temp", "/ TMP").replace(
        "/ student_temp", "/ teacher_temp").replace("/ TMP", "/ student_temp"),
    "paired each global view with itself": LOSS_LOOPS.replace("if i != j:", "if True:"),
    "summed over the view pairs": LOSS_LOOPS.replace("return total / pairs", "return total"),
    "gradient reaches the teacher": LOSS_LOOPS.replace("teacher.detach()", "teacher"),
    "softmax runs over the batch": LOSS_LOOPS.replace(
        "dim=-1)\n    log_p_s", "dim=1)\n    log_p_s").replace("student_temp, dim=-1)",
                                                           "student_temp, dim=1)"),
}
CENTER_RIGHT = """\
def update_center(center, teacher, m):
    mean = teacher.detach().reshape(-1, center.shape[0]).mean(0)
    center.mul_(m).add_((1 - m) * mean)
"""
CENTER_WRONG = {
    "swapped the momentum": CENTER_RIGHT.replace("center.mul_(m).add_((1 - m) * mean)",
                                                 "center.mul_(1 - m).add_(m * mean)"),
    "averaged over the prototypes": CENTER_RIGHT.replace(
        "teacher.detach().reshape(-1, center.shape[0]).mean(0)", "teacher.detach().mean()"),
    "averaged probabilities": CENTER_RIGHT.replace(
        "teacher.detach()", "torch.softmax(teacher.detach(), dim=-1)"),
    "update it in place": CENTER_RIGHT.replace("center.mul_(m).add_((1 - m) * mean)",
                                               "return m * center + (1 - m) * mean"),
}


def _fn(source: str, name: str):
    scope = {"torch": torch, "F": F}
    exec(source, scope)
    return scope[name]


@pytest.mark.parametrize("fn", [losses.dino_loss, _fn(LOSS_LOOPS, "dino_loss")],
                         ids=["library", "loops"])
def test_correct_losses_pass(fn, capsys):
    checks.dino_loss(fn)
    assert "dino_loss: 7 public checks passed." in capsys.readouterr().out


@pytest.mark.parametrize("mistake", LOSS_WRONG)
def test_wrong_losses_fail_naming_the_mistake(mistake):
    with pytest.raises(CheckFailed, match=mistake):
        checks.dino_loss(_fn(LOSS_WRONG[mistake], "dino_loss"))


@pytest.mark.parametrize("fn", [update_center_, _fn(CENTER_RIGHT, "update_center")],
                         ids=["library", "written"])
def test_correct_center_updates_pass(fn, capsys):
    checks.update_center(fn)
    assert "update_center: 5 public checks passed." in capsys.readouterr().out


@pytest.mark.parametrize("mistake", CENTER_WRONG)
def test_wrong_center_updates_fail_naming_the_mistake(mistake):
    with pytest.raises(CheckFailed, match=mistake):
        checks.update_center(_fn(CENTER_WRONG[mistake], "update_center"))


def test_a_stub_raises_only_not_implemented():
    def stub(*args):
        raise NotImplementedError("write the loss")
    for check in (checks.dino_loss, checks.update_center):
        with pytest.raises(NotImplementedError):
            check(stub)
