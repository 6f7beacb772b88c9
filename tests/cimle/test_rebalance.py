"""Rebalancing (§5.2.4): rarity vs an independent scipy KDE, sampler frequencies, mask."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.stats import gaussian_kde

from synth_cimle import RarityBatchSampler, RebalancedDataset, rarity_scores


class _Toy:
    """Images with 3 classes in fixed stripes and random per-class colours."""

    num_classes = 3
    fields = frozenset({"label_map"})

    def __init__(self, n: int = 24, seed: int = 0) -> None:
        g = torch.Generator().manual_seed(seed)
        self.labels = torch.zeros(n, 8, 8, dtype=torch.long)
        self.labels[:, 3:6] = 1
        self.labels[:, 6:] = 2
        self.labels[n // 2 :, 6:] = 0  # class 2 appears in half of the images only
        colours = torch.rand(n, 3, 3, generator=g) * 2 - 1  # [N, K, 3]
        noise = torch.rand(n, 3, 8, 8, generator=g) * 0.1
        # test data built with a plain loop (the reference side may loop)
        self.real = torch.stack([colours[i].T[:, self.labels[i]] for i in range(n)]) + noise
        self.n = n

    def __len__(self) -> int:
        return self.n

    def __repr__(self) -> str:
        return f"_Toy(n={self.n})"

    def __getitem__(self, i: int) -> dict:
        return {"real": self.real[i], "label_map": self.labels[i]}


def test_rarity_matches_scipy_kde():
    ds = _Toy()
    model = rarity_scores(ds, cache=False)
    for p in range(3):
        cols, rows = [], []
        for k in range(len(ds)):
            sel = ds.labels[k] == p
            if sel.any():
                cols.append(ds.real[k][:, sel].double().mean(1).numpy())
                rows.append(k)
        data = np.stack(cols).T  # [3, n_p]
        kde = gaussian_kde(data)
        want = 1.0 / kde(data)
        got = model.scores[rows, p].numpy()
        np.testing.assert_allclose(got, want, rtol=1e-6)
        absent = [k for k in range(len(ds)) if k not in rows]
        assert torch.all(model.scores[absent, p] == 0)


def test_rarity_is_cached(tmp_path, monkeypatch):
    monkeypatch.setenv("SYNTH_HOME", str(tmp_path))
    ds = _Toy()
    first = rarity_scores(ds)
    files = list((tmp_path / "cache" / "cimle").glob("rarity-*.safetensors"))
    assert len(files) == 1
    again = rarity_scores(ds)
    torch.testing.assert_close(first.scores, again.scores)


def test_mask_is_normalised_rarity():
    ds = _Toy()
    model = rarity_scores(ds, cache=False)
    real, labels = ds.real[:2], ds.labels[:2]
    mask = model.mask(real, labels)
    assert mask.shape == (2, 1, 8, 8)
    for b in range(2):
        r = model.scores[b]
        want = r[labels[b]] / r[labels[b]].max()
        torch.testing.assert_close(mask[b, 0].double(), want.double(), rtol=1e-5, atol=1e-7)


def test_sampler_frequencies_follow_rarity():
    g = torch.Generator().manual_seed(0)
    scores = torch.rand(6, 7, generator=g)
    scores[2, :] = 0  # image 2 never drawn
    area = torch.tensor([1.0, 9, 8, 7, 0.5, 6, 5])  # top five: 1, 2, 3, 5, 6
    sampler = RarityBatchSampler(scores, area, batch_size=10, num_batches=4000, seed=0)
    assert sampler.classes.tolist() == [1, 2, 3, 5, 6]
    draws = sampler.draw(torch.Generator().manual_seed(1))  # [4000, 10]
    assert draws.shape == (4000, 10)
    # two slots per class; column block c holds class c's draws
    for c, p in enumerate([1, 2, 3, 5, 6]):
        got = torch.bincount(draws[:, 2 * c : 2 * c + 2].reshape(-1), minlength=6).double()
        got = got / got.sum()
        want = scores[:, p].double() / scores[:, p].sum()
        assert torch.allclose(got, want, atol=0.02)
        assert got[2] == 0


def test_rebalanced_dataset_is_deterministic_per_epoch():
    ds = _Toy()
    model = rarity_scores(ds, cache=False)
    rb = RebalancedDataset(ds, model, top=2, block=4, seed=3)
    rb.set_epoch(1)
    a = rb.order.clone()
    rb.set_epoch(2)
    rb.set_epoch(1)
    assert torch.equal(a, rb.order) and len(rb) == len(ds)
    assert rb[0]["real"].shape == (3, 8, 8)


def test_rarity_needs_the_number_of_classes():
    with pytest.raises(ValueError):
        rarity_scores([], num_classes=None, cache=False)


def test_min_count_skips_rarely_seen_classes():
    """Item 15 (official layout code: classes seen in <= 67 images are skipped): with
    min_count = 12, class 2 (in 12 of 24 images) gets no KDE and rarity 0, the other classes
    keep the scores of the full fit, and the sampler never allocates slots to it."""
    ds = _Toy()
    full = rarity_scores(ds, cache=False)
    cut = rarity_scores(ds, cache=False, min_count=12)
    assert torch.equal(cut.scores[:, 2], torch.zeros(len(ds), dtype=cut.scores.dtype))
    torch.testing.assert_close(cut.scores[:, :2], full.scores[:, :2])
    assert torch.equal(full.scores, rarity_scores(ds, cache=False, min_count=11).scores)
    new = cut.rarity(ds.real[:2], ds.labels[:2])  # images with class 2
    assert torch.equal(new[:, 2], torch.zeros(2)) and bool((new[:, :2] > 0).all())
    sampler = RarityBatchSampler(cut.scores, cut.area, 6, 2)
    assert 2 not in sampler.classes.tolist() and len(sampler.classes) == 2
    with pytest.raises(ValueError, match="min_count"):
        rarity_scores(ds, cache=False, min_count=-1)
