"""The method contract of ``fit``: sample indices for methods that ask for them, and the epoch
hook, as clustering methods (DeepCluster's per-sample pseudo-labels re-computed every epoch,
SCAN's mined neighbours) need them.

The toy method below is a miniature DeepCluster: at the start of every pass over the pool it
labels each image by a rule on the whole pool (bright or dark) and stores the labels in a
buffer; each step looks its samples' labels up by ``index`` and trains a classifier on them.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from distributed_helpers import run_on_ranks
from torch import nn

from sslkit.methods import Method
from sslkit.train import TrainConfig, fit


class Flat(nn.Module):
    feature_dim = 8

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(3 * 4 * 4, 8)

    def forward(self, x):
        return self.fc(x.flatten(1))


class PseudoLabels(Method):
    """Pseudo-labels of the whole pool, refreshed each epoch, looked up by sample index."""

    uses_index = True

    def __init__(self, pool_size: int):
        super().__init__(Flat())
        self.head = nn.Linear(8, 2)
        self.register_buffer("targets", torch.full((pool_size,), -1, dtype=torch.long))
        self.register_buffer("epochs_seen", torch.zeros((), dtype=torch.long))
        self.hook_calls: list[tuple[int, bool]] = []   # (epoch, was the method in train mode)
        self.batches: list[tuple[torch.Tensor, torch.Tensor]] = []   # (index, images)

    @torch.no_grad()
    def on_epoch_start(self, epoch, images):
        self.hook_calls.append((epoch, self.training))
        self.eval()  # fit must put the method back in training mode
        brightness = images.float().mean(dim=(1, 2, 3))
        self.targets.copy_((brightness > brightness.median()).long())
        self.epochs_seen.add_(1)

    def training_step(self, images, labels=None, *, index=None):
        assert self.training, "the loop must train in training mode after the hook"
        self.batches.append((index.clone(), images.clone()))
        logits = self.head(self.backbone(images.float() / 255))
        targets = self.targets[index]
        acc = (logits.argmax(1) == targets).float().mean()
        return F.cross_entropy(logits, targets), {"acc": acc}


class NoIndex(Method):
    """A method without ``uses_index``: its step has no ``index`` parameter at all."""

    def __init__(self):
        super().__init__(Flat())

    def training_step(self, images, labels=None):
        return self.backbone(images.float()).pow(2).mean(), {}


def _pool(n=64, seed=0):
    g = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 100, (n, 3, 4, 4), generator=g, dtype=torch.uint8)
    images[n // 2:] += 120   # half bright, half dark: the hook's labels are learnable
    return images


def test_index_points_at_the_batch_and_each_epoch_covers_the_pool():
    images = _pool()
    torch.manual_seed(0)
    method = PseudoLabels(len(images))
    fit(method, images, config=TrainConfig(steps=10, batch_size=16, lr=0.05), progress=False)

    assert len(method.batches) == 10
    for index, batch in method.batches:
        assert index.dtype == torch.long and index.shape == (16,)
        assert torch.equal(images[index], batch)   # index is the position of each image
    # 64 images, 16 per step: steps 1-4 are epoch 0, 5-8 epoch 1, 9-10 epoch 2.
    for epoch in range(2):
        seen = torch.cat([i for i, _ in method.batches[4 * epoch:4 * epoch + 4]])
        assert torch.equal(seen.sort().values, torch.arange(64))   # a permutation of the pool
    assert not torch.equal(method.batches[0][0], method.batches[4][0])   # reshuffled


def test_epoch_hook_runs_once_per_pass_before_its_first_step_and_training_resumes():
    images = _pool()
    torch.manual_seed(0)
    method = PseudoLabels(len(images))
    history = fit(method, images, config=TrainConfig(steps=40, batch_size=16, lr=0.05),
                  progress=False)
    assert [e for e, _ in method.hook_calls] == list(range(10))   # 4 steps per pass
    assert all(mode for _, mode in method.hook_calls)   # called in training mode
    # It learned the hook's pseudo-labels (a separable rule: 1.0 on 5 of 5 seeds tried).
    assert min(history.logs["acc"][-5:]) >= 0.9 and history.loss[-1] < history.loss[0] / 2
    assert not method.training   # fit leaves the method in eval mode


def test_epoch_budget_runs_the_hook_once_per_epoch():
    images = _pool()
    method = PseudoLabels(len(images))
    fit(method, images, config=TrainConfig(epochs=3, batch_size=16, lr=0.05), progress=False)
    assert [e for e, _ in method.hook_calls] == [0, 1, 2] and len(method.batches) == 12


def test_methods_without_uses_index_get_no_index():
    images = _pool()
    history = fit(NoIndex(), images, config=TrainConfig(steps=3, batch_size=16), progress=False)
    assert history.step == [1, 2, 3]


def test_resume_restores_the_hook_state_and_calls_it_only_for_new_epochs(tmp_path):
    images = _pool()
    config = TrainConfig(steps=10, batch_size=16, lr=0.05, checkpoint_every=6)
    torch.manual_seed(0)
    straight = PseudoLabels(len(images))
    fit(straight, images, config=config, progress=False)

    torch.manual_seed(0)
    partial = PseudoLabels(len(images))
    ckpt = tmp_path / "cut.pt"
    original = partial.on_step_end

    def interrupt_after_step_7(step, total):
        original(step, total)
        if step == 7:
            raise KeyboardInterrupt

    partial.on_step_end = interrupt_after_step_7
    with pytest.raises(KeyboardInterrupt):
        fit(partial, images, config=config, checkpoint=ckpt, progress=False)

    resumed = PseudoLabels(len(images))   # fresh weights and empty targets
    fit(resumed, images, config=config, checkpoint=ckpt, resume=True, progress=False)
    # Checkpoint at step 6 (epoch 1, hook already run): the resume runs steps 7-10 and the
    # hook only for epoch 2; the targets and epoch count come back from the checkpoint.
    assert [e for e, _ in resumed.hook_calls] == [2]
    assert int(resumed.epochs_seen) == int(straight.epochs_seen) == 3
    assert torch.equal(resumed.batches[0][0], straight.batches[6][0])
    torch.testing.assert_close(resumed.head.weight, straight.head.weight, rtol=0, atol=0)


def _train_on_my_slice(rank):
    images = _pool()
    torch.manual_seed(0)
    method = PseudoLabels(len(images))
    fit(method, images, config=TrainConfig(steps=6, batch_size=16, lr=0.05), progress=False)
    return {"index": torch.stack([i for i, _ in method.batches]),
            "consistent": all(torch.equal(images[i], b) for i, b in method.batches),
            "epochs": [e for e, _ in method.hook_calls],
            "weight": method.head.weight.detach()}


def test_ddp_ranks_get_their_slice_of_the_index_and_run_the_hook(tmp_path):
    """Two gloo processes: each rank's ``index`` is its half of the global batch, matching its
    images, the halves together are the single-process batch, and both ranks run the hook."""
    r0, r1 = run_on_ranks(_train_on_my_slice, 2, tmp_path)
    torch.manual_seed(0)
    single = PseudoLabels(64)
    fit(single, _pool(), config=TrainConfig(steps=6, batch_size=16, lr=0.05), progress=False)
    whole = torch.stack([i for i, _ in single.batches])                   # (6, 16)

    assert r0["index"].shape == r1["index"].shape == (6, 8)
    assert torch.equal(torch.cat([r0["index"], r1["index"]], dim=1), whole)
    assert r0["consistent"] and r1["consistent"]
    assert r0["epochs"] == r1["epochs"] == [0, 1]
    torch.testing.assert_close(r0["weight"], r1["weight"], rtol=0, atol=0)   # DDP kept in sync
