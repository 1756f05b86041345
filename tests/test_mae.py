"""MAE (``sslkit.methods.MAE``): the encoder sees the visible patches only, the decoder puts the
mask tokens in the right places, the loss counts the hidden patches, the teacher variant moves
by EMA, the two-scale head lays its output out as ``patchify`` does, and a short run learns to
beat the mean patch."""

from __future__ import annotations

import pytest
import torch
from test_self_distillation import _images  # random uint8 images (n, 3, 32, 32)
from torch import nn

from sslkit import data, losses, masking, models, views
from sslkit.methods import MAE
from sslkit.train import TrainConfig, fit

IDENTITY = views.Recipe(size=32, crop_scale=(1.0, 1.0), crop_ratio=(1.0, 1.0), flip_p=0.0,
                        jitter_p=0.0, grayscale_p=0.0)


def _vit(patch_size=8):
    torch.manual_seed(0)
    return models.TinyViT(image_size=32, patch_size=patch_size, dim=32, depth=2, heads=4)


def _mae(**kw):
    return MAE(_vit(kw.pop("patch_size", 8)), decoder_dim=16, recipe=IDENTITY, **kw)


def _masking(b, n, ratio=0.75, seed=0):
    return masking.random_masking(b, n, ratio, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("kw", [{}, {"multiscale": True}, {"target": "teacher"}],
                         ids=["pixels", "two scales", "teacher"])
def test_the_prediction_depends_on_the_visible_patches_only(kw):
    mae = _mae(**kw).eval()
    x = views.to_float(_images(4))
    m = _masking(4, 16)
    patches = models.patchify(x, 8)
    other = models.patchify(views.to_float(_images(4, seed=1)), 8)
    changed = models.unpatchify(torch.where(m.mask.unsqueeze(-1), other, patches), 8)
    with torch.no_grad():
        a, b = mae.reconstruct(x, m), mae.reconstruct(changed, m)
        # and a visible patch changed does change it
        c = mae.reconstruct(models.unpatchify(torch.where(m.mask.unsqueeze(-1), patches, other),
                                              8), m)
    for u, v, w in zip(*(t if isinstance(t, tuple) else (t,) for t in (a, b, c)), strict=True):
        torch.testing.assert_close(u, v)
        assert (u - w).abs().max() > 1e-3


def test_the_decoder_puts_each_token_at_its_patch_and_mask_tokens_at_the_hidden_ones():
    mae = _mae()
    mae.decoder, mae.decoder_norm = nn.ModuleList(), nn.Identity()   # decode = embed + place
    nn.init.zeros_(mae.decoder_pos)
    tokens = torch.randn(3, 4, 32)
    m = _masking(3, 16)
    with torch.no_grad():
        out = mae.decode(tokens, m.ids_restore)                    # (3, 16, 16)
        embedded = mae.decoder_embed(tokens)
    for b in range(3):
        for j, n in enumerate(m.keep_idx[b].tolist()):
            torch.testing.assert_close(out[b, n], embedded[b, j])
        torch.testing.assert_close(out[b, m.mask[b]],
                                   mae.mask_token[0].expand(int(m.mask[b].sum()), -1))


def test_the_loss_is_masked_mse_of_the_reconstruction_and_ignores_visible_patches():
    mae = _mae(target="pixels")
    images = _images(4)
    torch.manual_seed(5)
    loss, logs = mae.training_step(images)
    torch.manual_seed(5)                         # the same masks: rebuild the loss by hand
    x = views.augment(images, IDENTITY)
    m = mae.sample_masking(4, x.device)
    pred = mae.reconstruct(x, m)
    target = models.patchify(x, 8)
    by_hand = ((pred - target).pow(2).mean(-1) * m.mask).sum() / m.mask.sum()
    torch.testing.assert_close(loss, by_hand)
    assert logs["masked_mse"] == pytest.approx(loss.item())


def test_the_teacher_starts_as_the_encoder_gets_no_gradient_and_follows_by_ema():
    mae = _mae(target="teacher", momentum=0.5, momentum_schedule="constant")
    for t, o in zip(mae.teacher.parameters(), mae.backbone.parameters(), strict=True):
        assert torch.equal(t, o) and not t.requires_grad
    loss, _ = mae.training_step(_images(4))
    loss.backward()
    assert all(t.grad is None for t in mae.teacher.parameters())
    before = [t.clone() for t in mae.teacher.parameters()]
    with torch.no_grad():
        for o in mae.backbone.parameters():
            o.add_(1.0)
    mae.on_step_end(1, 10)
    for t, t0, o in zip(mae.teacher.parameters(), before, mae.backbone.parameters(), strict=True):
        torch.testing.assert_close(t, 0.5 * t0 + 0.5 * o)


def test_the_two_scale_head_lays_out_full_resolution_patches_as_patchify_does():
    mae = _mae(multiscale=True)
    x = views.to_float(_images(2))
    y = torch.randn(2, 3, 32, 32)                # what the upsampling head will "predict"
    grid = 2 * mae.backbone.grid                 # half-resolution patches of 4 px on 8 × 8
    fine_map = models.patchify(y, 4).transpose(1, 2).reshape(2, -1, grid, grid)

    class Fixed(nn.Module):                      # a stand-in for the upsampling head
        def forward(self, fmap):
            assert fmap.shape == (2, 16, 4, 4)   # the decoder's tokens as a 4 × 4 grid
            return fine_map

    mae.upsample = Fixed()
    coarse, full = mae.reconstruct(x, _masking(2, 16))
    assert coarse.shape == (2, 16, 4 * 4 * 3)
    torch.testing.assert_close(full, models.patchify(y, 8))


def test_a_learners_masking_function_is_used_and_keyed():
    calls = []

    def mine(batch_size, num_patches, mask_ratio, device=None):
        calls.append((batch_size, num_patches, mask_ratio))
        return tuple(masking.random_masking(batch_size, num_patches, mask_ratio, device=device))

    torch.manual_seed(1)
    a, _ = _mae(masking_fn=mine).training_step(_images(4))
    torch.manual_seed(1)
    b, _ = _mae().training_step(_images(4))
    torch.testing.assert_close(a, b)             # the same draws: the same loss
    assert calls == [(4, 16, 0.75)]
    assert _mae(masking_fn=mine).hparams["masking_fn"] != _mae().hparams["masking_fn"]


@pytest.mark.parametrize("make, name", [
    (lambda: MAE(models.SmallCNN()), "vit"),
    (lambda: _mae(mask_ratio=1.0), "mask_ratio"),
    (lambda: _mae(target="features"), "target"),
    (lambda: _mae(masking="grid"), "masking"),
    (lambda: _mae(target="teacher", multiscale=True), "multiscale"),
    (lambda: MAE(models.TinyViT(image_size=27, patch_size=9, dim=32, depth=1),
                 multiscale=True), "multiscale"),
    (lambda: MAE(_vit(), decoder_dim=30, decoder_heads=4), "decoder_heads"),
    (lambda: _mae(masking="block", masking_fn=lambda *a, **k: None), "masking_fn"),
    (lambda: _mae(momentum=1.0), "momentum"),
])
def test_invalid_settings_name_the_argument(make, name):
    with pytest.raises(ValueError, match=name):
        make()


def test_a_short_run_beats_the_mean_patch_on_hidden_patches():
    splits = data.shapeworld_splits("easy", n_unlabeled=512, labels_per_class=1, n_val=10,
                                    n_test=200, seed=0)
    torch.manual_seed(0)
    mae = MAE(_vit(), mask_ratio=0.75, target="pixels", decoder_dim=32)
    fit(mae, splits.unlabeled, config=TrainConfig(steps=300, batch_size=64, lr=2e-3, seed=0),
        progress=False)
    mae.eval()
    x = views.to_float(splits.test_x)
    m = _masking(len(x), 16, seed=1)
    target = models.patchify(x, 8)
    mean_patch = models.patchify(views.to_float(splits.unlabeled), 8).mean(0)
    with torch.no_grad():
        ours = losses.masked_mse(mae.reconstruct(x, m), target, m.mask, norm_pix=False)
    baseline = losses.masked_mse(mean_patch.expand_as(target), target, m.mask, norm_pix=False)
    assert ours < 0.8 * baseline, (ours, baseline)
