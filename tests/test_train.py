"""The training loop: schedule, guards, cache, checkpoint and resume.

These tests use a tiny linear method on flattened pixels so that they run in a second and do
not depend on the augmentation or model modules.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from distributed_helpers import run_on_ranks
from torch import nn

from sslkit import train as train_module
from sslkit.methods import Method
from sslkit.train import (
    CheckpointError,
    NonFiniteLossError,
    TrainConfig,
    cache_path,
    fit,
    lr_at,
)


class Flat(nn.Module):
    feature_dim = 8

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(3 * 4 * 4, 8)
        self.bn = nn.BatchNorm1d(8)  # its 0-dim buffer must hash and checkpoint too

    def forward(self, x):
        return self.bn(self.fc(x.flatten(1)))


class TinyClassifier(Method):
    """Linear classifier on pixels; noise in the step makes the global RNG matter."""

    def __init__(self, scale: float = 1.0):
        super().__init__(Flat())
        self.head = nn.Linear(8, 2)
        self.scale = scale
        self.hparams = {"scale": scale}

    def training_step(self, images, labels=None):
        x = images.float() / 255 + 0.01 * torch.randn(images.shape)
        logits = self.head(self.backbone(x)) * self.scale
        return F.cross_entropy(logits, labels), {"acc": (logits.argmax(1) == labels).float().mean()}


def _data(n=64, seed=0):
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % 2
    images = torch.randint(0, 100, (n, 3, 4, 4), generator=g, dtype=torch.uint8)
    images[y == 1] += 120  # class 1 is brighter: linearly separable
    return images, y


def test_lr_schedule_warms_up_linearly_then_decays_by_cosine():
    c = TrainConfig(steps=100, lr=1.0, warmup=0.1, min_lr_ratio=0.1)
    assert lr_at(0.0, c) == 0.0
    assert lr_at(0.05, c) == pytest.approx(0.5)
    assert lr_at(0.1, c) == pytest.approx(1.0)
    assert lr_at(0.55, c) == pytest.approx(0.1 + 0.9 * 0.5)  # halfway through the cosine
    assert lr_at(1.0, c) == pytest.approx(0.1)


@pytest.mark.parametrize("kwargs, name", [
    (dict(steps=0), "steps"), (dict(steps=10, batch_size=0), "batch_size"),
    (dict(steps=10, lr=-1.0), "lr"), (dict(steps=10, weight_decay=-0.1), "weight_decay"),
    (dict(steps=10, warmup=1.0), "warmup"), (dict(steps=10, optimizer="adam9"), "optimizer"),
    (dict(steps=10, momentum=1.5), "momentum"), (dict(epochs=-1.0), "epochs"),
    (dict(steps=10, amp="fp8"), "amp"), (dict(steps=10, grad_clip=0.0), "grad_clip"),
])
def test_invalid_config_names_the_parameter(kwargs, name):
    with pytest.raises(ValueError, match=name):
        TrainConfig(**kwargs)


def test_exactly_one_budget_is_required():
    with pytest.raises(ValueError, match="exactly one budget"):
        TrainConfig()
    with pytest.raises(ValueError, match="exactly one budget"):
        TrainConfig(steps=10, epochs=1.0)


def test_fit_learns_and_keeps_a_history():
    images, y = _data()
    torch.manual_seed(0)
    method = TinyClassifier()
    h = fit(method, images, y, TrainConfig(steps=60, batch_size=16, lr=0.05), progress=False)
    assert h.step == list(range(1, 61))
    assert len(h.loss) == len(h.lr) == len(h.logs["acc"]) == 60
    assert sum(h.loss[-10:]) / 10 < 0.5 * h.loss[0]
    assert sum(h.logs["acc"][-10:]) / 10 > 0.9
    assert not method.training  # fit leaves the method in eval mode


def test_on_log_sees_every_logged_step_with_the_history_values(tmp_path):
    images, y = _data()
    calls = []
    config = TrainConfig(steps=7, batch_size=16, lr=0.05, log_every=3)
    torch.manual_seed(0)
    h = fit(TinyClassifier(), images, y, config, progress=False, cache=tmp_path,
            on_log=lambda step, loss, logs: calls.append((step, loss, logs)))
    assert [c[0] for c in calls] == h.step == [3, 6, 7]  # every 3rd step and the last
    assert [c[1] for c in calls] == h.loss
    assert [c[2]["acc"] for c in calls] == h.logs["acc"]
    calls.clear()  # a cache hit returns the stored history without replaying it
    torch.manual_seed(0)
    fit(TinyClassifier(), images, y, config, progress=False, cache=tmp_path,
        on_log=lambda *a: calls.append(a))
    assert calls == []
    with pytest.raises(TypeError, match="on_log must be a function"):
        fit(TinyClassifier(), images, y, config, progress=False, on_log="print")


def test_epoch_budget_counts_passes_over_the_pool():
    images, y = _data(n=64)
    h = fit(TinyClassifier(), images, y, TrainConfig(epochs=2, batch_size=16), progress=False)
    assert h.step[-1] == 8


def test_nan_loss_stops_with_the_step_and_causes():
    images, y = _data()
    method = TinyClassifier(scale=float("nan"))
    with pytest.raises(NonFiniteLossError, match=r"step 1 .*learning rate"):
        fit(method, images, y, TrainConfig(steps=5, batch_size=8), progress=False)


def test_same_seed_same_weights_and_different_seed_differs():
    images, y = _data()

    def run(seed):
        torch.manual_seed(123)
        m = TinyClassifier()
        fit(m, images, y, TrainConfig(steps=20, batch_size=8, seed=seed), progress=False)
        return m.head.weight.detach().clone()

    torch.testing.assert_close(run(0), run(0), rtol=0, atol=0)  # same process, kernels, threads
    assert not torch.equal(run(0), run(1))


def test_resume_reproduces_an_uninterrupted_run_exactly(tmp_path):
    images, y = _data()
    config = TrainConfig(steps=30, batch_size=16, lr=0.05, checkpoint_every=10)

    torch.manual_seed(0)
    straight = TinyClassifier()
    fit(straight, images, y, config, progress=False)

    torch.manual_seed(0)
    partial = TinyClassifier()
    ckpt = tmp_path / "cut.pt"
    with pytest.raises(KeyboardInterrupt):  # interrupted at step 12; last checkpoint: step 10
        _fit_and_interrupt(partial, images, y, config, ckpt, at=12)
    assert torch.load(ckpt, weights_only=True)["loop"]["step"] == 10
    torch.manual_seed(999)  # resuming must not depend on the caller's RNG state
    resumed = TinyClassifier()
    h = fit(resumed, images, y, config, checkpoint=ckpt, resume=True, progress=False)
    assert h.step[0] == 1 and h.step[-1] == 30 and len(h.step) == 30
    torch.testing.assert_close(resumed.head.weight, straight.head.weight, rtol=0, atol=0)


def _fit_and_interrupt(method, images, y, config, ckpt, at):
    original = method.on_step_end

    def boom(step, total):
        original(step, total)
        if step == at:
            raise KeyboardInterrupt

    method.on_step_end = boom
    fit(method, images, y, config, checkpoint=ckpt, progress=False)


def test_resume_refuses_a_corrupt_or_mismatched_checkpoint(tmp_path):
    images, y = _data()
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="Delete it"):
        fit(TinyClassifier(), images, y, TrainConfig(steps=5), checkpoint=bad, resume=True,
            progress=False)
    good = tmp_path / "good.pt"
    fit(TinyClassifier(), images, y, TrainConfig(steps=5, batch_size=8), checkpoint=good,
        progress=False)
    with pytest.raises(CheckpointError, match="lr: saved 0.001, now 0.01"):
        fit(TinyClassifier(), images, y, TrainConfig(steps=5, batch_size=8, lr=0.01),
            checkpoint=good, resume=True, progress=False)


def test_cache_loads_an_identical_run_and_misses_on_any_change(tmp_path):
    images, y = _data()
    config = TrainConfig(steps=15, batch_size=16, lr=0.05)
    torch.manual_seed(0)
    a = TinyClassifier()
    path = cache_path(a, images, y, config, tmp_path)
    ha = fit(a, images, y, config, cache=tmp_path, progress=False)
    assert path.exists() and not ha.from_cache

    torch.manual_seed(0)
    b = TinyClassifier()
    hb = fit(b, images, y, config, cache=tmp_path, progress=False)
    assert hb.from_cache and hb.loss == ha.loss
    torch.testing.assert_close(b.head.weight, a.head.weight, rtol=0, atol=0)

    torch.manual_seed(0)
    base = TinyClassifier()
    assert cache_path(base, images, y, TrainConfig(steps=16, batch_size=16, lr=0.05),
                      tmp_path) != path  # budget
    assert cache_path(TinyClassifier(scale=2.0), images, y, config, tmp_path) != path  # hparam
    torch.manual_seed(1)
    assert cache_path(TinyClassifier(), images, y, config, tmp_path) != path  # init weights
    assert cache_path(base, images.flip(0), y, config, tmp_path) != path  # data


def test_corrupt_cache_entry_is_reported_and_retrained(tmp_path):
    images, y = _data()
    config = TrainConfig(steps=10, batch_size=16)
    torch.manual_seed(0)
    m = TinyClassifier()
    path = cache_path(m, images, y, config, tmp_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\x00garbage")
    with pytest.warns(UserWarning, match="could not be read"):
        h = fit(m, images, y, config, cache=tmp_path, progress=False)
    assert not h.from_cache and len(h.step) == 10
    torch.load(path, weights_only=True)  # overwritten with a good entry


def test_cache_files_load_with_weights_only(tmp_path):
    images, y = _data()
    fit(TinyClassifier(), images, y, TrainConfig(steps=3, batch_size=8), cache=tmp_path,
        progress=False)
    (entry,) = tmp_path.glob("*.pt")
    loaded = torch.load(entry, weights_only=True)
    assert set(loaded) == {"state_dict", "history", "config"}
    assert all(math.isfinite(v) for v in loaded["history"]["loss"])


def test_fit_rejects_bad_inputs():
    images, y = _data()
    with pytest.raises(ValueError, match="labels has 3 entries"):
        fit(TinyClassifier(), images, y[:3], TrainConfig(steps=1), progress=False)
    with pytest.raises(ValueError, match="non-empty"):
        fit(TinyClassifier(), images[:0], None, TrainConfig(steps=1), progress=False)
    with pytest.raises(TypeError, match="Method"):
        fit(nn.Linear(2, 2), images, y, TrainConfig(steps=1), progress=False)


def test_seconds_budget_stops_on_the_clock_and_decays_the_lr():
    images, y = _data()
    h = fit(TinyClassifier(), images, y, TrainConfig(seconds=0.3, batch_size=8, warmup=0.0),
            progress=False)
    # It ran the budget out, and its last step started before the budget was spent (the lr of
    # a step is its share of the budget on the cosine: 0 at the end). No wall-clock upper bound:
    # a busy machine may make one step slow.
    assert h.seconds >= 0.3 and len(h.step) > 1 and h.lr[-1] > 0
    assert h.lr[-1] < h.lr[0]


def test_online_knn_is_recorded_every_k_steps():
    images, y = _data()
    h = fit(TinyClassifier(), images, y, TrainConfig(steps=10, batch_size=16, knn_every=5),
            knn_data=(images[:32], y[:32], images[32:], y[32:]), progress=False)
    assert h.knn_step == [5, 10]
    assert all(0.0 <= a <= 1.0 for a in h.knn_acc)


def _train_on_my_slice(rank):
    images, y = _data()
    torch.manual_seed(0)
    method = TinyClassifier()
    fit(method, images, y, TrainConfig(steps=5, batch_size=16, lr=0.05), progress=False)
    return method.head.weight.detach()


def test_ddp_ranks_train_on_disjoint_slices_and_stay_in_sync(tmp_path):
    """Two gloo processes on CPU (what torchrun launches): each rank trains on its slice of the
    batch and DistributedDataParallel averages the gradients, so both ranks end with the same,
    trained weights."""
    w0, w1 = run_on_ranks(_train_on_my_slice, 2, tmp_path)
    torch.testing.assert_close(w0, w1, rtol=0, atol=0)  # one all-reduced gradient for both ranks
    torch.manual_seed(0)
    assert not torch.allclose(w0, TinyClassifier().head.weight)  # it did train


_RUN_ONCE = """
import torch
from sslkit import data, models
from sslkit.methods import Supervised
from sslkit.train import TrainConfig, fit
x = data.render(data.preset("hard"), 64, seed=0)
torch.manual_seed(0)
m = Supervised(models.SmallCNN(), 10)
fit(m, x.images, x.labels, TrainConfig(steps=8, batch_size=32, lr=5e-3), progress=False)
print(repr(sum(p.double().sum().item() for p in m.parameters())))
"""


def test_same_seed_same_weights_in_separate_processes():
    """COURSE.md §9: the same seed gives the same numbers on the same machine, including the
    views, the CNN's kernels and the sampler, across fresh interpreters."""
    import subprocess
    import sys

    runs = [subprocess.run([sys.executable, "-c", _RUN_ONCE], capture_output=True, text=True,
                           check=True).stdout for _ in range(2)]
    assert runs[0] == runs[1] and runs[0].strip()


class AutocastSpy(TinyClassifier):
    """Records whether each step's forward ran under CPU bf16 autocast."""

    def __init__(self):
        super().__init__()
        self.autocast_seen: list[bool] = []

    def training_step(self, images, labels=None):
        self.autocast_seen.append(torch.is_autocast_enabled("cpu"))
        return super().training_step(images, labels)


@pytest.mark.parametrize("native", [True, False])
def test_bf16_on_cpu_only_where_the_cpu_has_native_bf16(monkeypatch, native):
    monkeypatch.setattr(train_module, "cpu_has_native_bf16", lambda: native)
    images, y = _data()
    spy = AutocastSpy()
    if native:
        fit(spy, images, y, TrainConfig(steps=2, batch_size=16, amp="bf16"), progress=False)
    else:
        with pytest.warns(UserWarning, match="native bf16"):
            fit(spy, images, y, TrainConfig(steps=2, batch_size=16, amp="bf16"), progress=False)
    assert spy.autocast_seen == [native, native]
    default = AutocastSpy()                                  # "auto" stays float32 on CPU
    fit(default, images, y, TrainConfig(steps=2, batch_size=16), progress=False)
    assert default.autocast_seen == [False, False]
