"""Instance-wise pooling, the feature encoder, the cluster sampler and the editing helpers."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import synth
from synth import Condition, Latents
from synth_pix2pixhd import (
    add_instance,
    batched_kmeans,
    edit_labels,
    instance_average,
    instance_features,
    remove_instance,
)

from .official import looped_instance_average


def _maps(b, h, w, n_inst, seed, k=4):
    g = torch.Generator().manual_seed(seed)
    inst = (torch.randint(0, n_inst, (b, h // 4, w // 4), generator=g) + 1) * 1000 + 7
    inst = inst.repeat_interleave(4, 1).repeat_interleave(4, 2)
    labels = (inst // 1000) % k
    return labels, inst


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_instance_average_matches_looped_reference(seed):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(3, 4, 16, 24, generator=g)
    # random ids: sparse, large, negative, some shared across samples, some not
    inst = torch.randint(-3, 9, (3, 16, 24), generator=g) * 997
    ours = instance_average(x, inst)
    ref = looped_instance_average(x, inst[:, None])
    torch.testing.assert_close(ours, ref, rtol=1e-5, atol=1e-6)


def test_instance_average_bf16_and_grad():
    x = torch.randn(1, 2, 8, 8, requires_grad=True)
    inst = torch.arange(4).repeat_interleave(16).view(1, 8, 8)
    y = instance_average(x.bfloat16(), inst)
    assert y.dtype == torch.bfloat16
    instance_average(x, inst).sum().backward()
    assert torch.allclose(x.grad, torch.ones_like(x))


def test_encoder_posterior_is_constant_per_instance(reg):
    enc = synth.build("pix2pixhd.instance_encoder", channels=3, nef=4, n_downsampling=2)
    labels, inst = _maps(2, 16, 16, 3, 0)
    cond = Condition(label_map=labels, num_classes=4, instance_map=inst)
    lat = enc.posterior(torch.randn(2, 3, 16, 16), cond)
    assert lat.spatial.shape == (2, 3, 16, 16) and lat.kl.dim() == 0
    for b in range(2):
        for i in inst[b].unique():
            vals = lat.spatial[b][:, inst[b] == i]
            assert torch.allclose(vals, vals[:, :1].expand_as(vals), atol=1e-6)
    prior = enc.prior(cond, torch.Generator().manual_seed(0)).spatial
    assert prior.shape == (2, 3, 16, 16)
    assert torch.equal(prior, enc.prior(cond, torch.Generator().manual_seed(0)).spatial)


def _official_encode_features(feat_map, inst, label_nc, block_num=32):
    """The official ``encode_features`` (one image) + the area filter of encode_features.py."""
    h, w = inst.shape[-2:]
    feature = {i: np.zeros((0, feat_map.shape[1] + 1)) for i in range(label_nc)}
    for i in np.unique(inst.numpy().astype(int)):
        label = i if i < 1000 else i // 1000
        idx = (inst == int(i)).nonzero()
        num = idx.size()[0]
        idx = idx[num // 2, :]
        val = np.zeros((1, feat_map.shape[1] + 1))
        for k in range(feat_map.shape[1]):
            val[0, k] = feat_map[idx[0], idx[1] + k, idx[2], idx[3]].item()
        val[0, -1] = float(num) / (h * w // block_num)
        feature[label] = np.append(feature[label], val, axis=0)
    return {k: v[v[:, -1] > 0.5, :-1] for k, v in feature.items()}


def test_instance_features_match_official_encode_features():
    _, inst = _maps(1, 32, 32, 6, 3)
    feat = instance_average(torch.randn(1, 3, 32, 32), inst)
    ref = _official_encode_features(feat, inst[:, None], 7)
    f, lab, keep = instance_features(feat, inst, inst // 1000)
    for c in range(7):
        ours = f[keep & (lab == c)].numpy()
        assert ours.shape == ref[c].shape
        np.testing.assert_allclose(np.sort(ours, 0), np.sort(ref[c], 0), rtol=1e-6)


def test_batched_kmeans_finds_separated_clusters():
    g = torch.Generator().manual_seed(0)
    true = torch.tensor([[-5.0, 0.0], [5.0, 0.0], [0.0, 5.0]])
    pts = true.repeat_interleave(20, 0) + 0.1 * torch.randn(60, 2, generator=g)
    points = torch.stack([pts, torch.zeros(60, 2)])
    mask = torch.zeros(2, 60, dtype=torch.bool)
    mask[0] = True
    mask[1, :2] = True  # a class with 2 points gets 2 centres
    centers, valid = batched_kmeans(points, mask, 3, generator=torch.Generator().manual_seed(1))
    assert valid[0].all() and valid[1].tolist() == [True, True, False]
    got = centers[0][torch.argsort(centers[0][:, 0] * 10 + centers[0][:, 1])]
    want = true[torch.argsort(true[:, 0] * 10 + true[:, 1])]
    assert torch.allclose(got, want, atol=0.1)


def _tiny_model():
    torch.manual_seed(0)
    return synth.compose(
        {
            "generator": {
                "type": "pix2pixhd.global_generator",
                "num_classes": 4,
                "ngf": 4,
                "n_downsampling": 1,
                "n_blocks": 1,
                "use_instances": True,
                "feat_num": 3,
            },
            "injector": {"type": "pix2pixhd.instance_encoder", "nef": 4, "n_downsampling": 1},
        }
    ).eval()


def test_cluster_sampler_fit_sample_and_edit(reg):
    model = _tiny_model()
    items = []
    for s in range(4):
        labels, inst = _maps(1, 16, 16, 4, s)
        items.append(
            {
                "real": torch.rand(3, 16, 16) * 2 - 1,
                "label_map": labels[0],
                "instance_map": inst[0],
                "index": s,
            }
        )
    sampler = synth.build("pix2pixhd.cluster_sampler", n_clusters=2)
    sampler.fit(model, items, batch_size=2)
    centers, valid = sampler.state_dict()["centers"], sampler.state_dict()["valid"]
    assert centers.shape == (4, 2, 3) and valid.any()
    labels, inst = _maps(2, 16, 16, 4, 9)
    cond = Condition(label_map=labels, num_classes=4, instance_map=inst)
    with torch.no_grad():
        out = sampler.sample(model, cond, 3, generator=torch.Generator().manual_seed(0))
    assert out.image.shape == (6, 3, 16, 16)
    sp = out.latents.spatial
    # every instance holds one of its class's centres
    cond_n = cond.repeat_interleave(3)
    for b in range(6):
        for i in cond_n.instance_map[b].unique():
            m = cond_n.instance_map[b] == i
            c = int(cond_n.label_map[b][m][0])
            v = sp[b][:, m][:, 0]
            ok = [torch.allclose(v, centers[c, j]) for j in range(2) if valid[c, j]]
            assert any(ok) or (not valid[c].any() and torch.all(v == 0))
    # editing: one instance gets a chosen centre, the others keep their features
    target = int(inst[0, 0, 0])
    cls = int(labels[0, 0, 0])
    j = int(valid[cls].nonzero()[0]) if valid[cls].any() else None
    if j is not None:
        lat = Latents(spatial=sp[:2])
        edited = sampler.set_instance_cluster(cond, lat, target, j, batch_index=0)
        m = cond.instance_map[0] == target
        assert torch.allclose(
            edited.spatial[0][:, m], centers[cls, j][:, None].expand(-1, int(m.sum()))
        )
        assert torch.equal(edited.spatial[0][:, ~m], sp[0][:, ~m])
        assert torch.equal(edited.spatial[1], sp[1])


def test_cluster_sampler_requires_fit(reg):
    model = _tiny_model()
    labels, inst = _maps(1, 16, 16, 4, 0)
    with pytest.raises(ValueError, match="fit"):
        synth.build("pix2pixhd.cluster_sampler").sample(
            model, Condition(label_map=labels, num_classes=4, instance_map=inst), 1
        )


def test_edit_labels_and_instances():
    labels, inst = _maps(1, 16, 16, 4, 5)
    cond = Condition(label_map=labels, num_classes=4, instance_map=inst)
    c0 = int(labels[0, 0, 0])
    region = torch.zeros(16, 16, dtype=torch.bool)
    region[:8] = True
    edited = edit_labels(cond, c0, (c0 + 1) % 4, region)
    changed = (labels == c0) & region
    assert torch.equal(edited.label_map[changed], torch.full_like(labels[changed], (c0 + 1) % 4))
    assert torch.equal(edited.label_map[~changed], labels[~changed])
    with pytest.raises(ValueError, match="outside"):
        edit_labels(cond, 0, 9)

    spatial = instance_average(torch.randn(1, 3, 16, 16), inst)
    mask = torch.zeros(16, 16, dtype=torch.bool)
    mask[4:8, 4:8] = True
    vec = torch.tensor([0.1, 0.2, 0.3])
    cond2, lat2 = add_instance(cond, Latents(spatial=spatial), mask, 2, features=vec)
    new_id = int(inst.max()) + 1
    assert (cond2.instance_map[0][mask] == new_id).all() and (cond2.label_map[0][mask] == 2).all()
    assert torch.allclose(lat2.spatial[0][:, mask], vec[:, None].expand(-1, 16))
    assert torch.equal(lat2.spatial[0][:, ~mask], spatial[0][:, ~mask])

    fill = int(inst[0, -1, -1])
    cond3, lat3 = remove_instance(cond2, lat2, new_id, fill_class=1, fill_instance=fill)
    assert not (cond3.instance_map == new_id).any()
    assert (cond3.label_map[0][mask] == 1).all()
    donor = cond2.instance_map[0] == fill
    assert torch.allclose(lat3.spatial[0][:, mask], spatial[0][:, donor][:, :1].expand(-1, 16))
    assert torch.equal(lat3.spatial[0][:, ~mask], lat2.spatial[0][:, ~mask])


def _fit_items() -> list[dict]:
    items = []
    for s in range(4):
        labels, inst = _maps(1, 16, 16, 4, s)
        items.append(
            {
                "real": torch.rand(3, 16, 16) * 2 - 1,
                "label_map": labels[0],
                "instance_map": inst[0],
                "index": s,
            }
        )
    return items


def _cluster_model() -> synth.SynthesisModel:
    spec = _tiny_model().spec.model_dump()
    spec["sampler"] = {"type": "pix2pixhd.cluster_sampler", "n_clusters": 2}
    torch.manual_seed(0)
    return synth.compose(spec).eval()


def _same_samples(a: synth.SynthesisModel, b: synth.SynthesisModel) -> None:
    labels, inst = _maps(2, 16, 16, 4, 9)
    cond = Condition(label_map=labels, num_classes=4, instance_map=inst)
    with torch.no_grad():
        x = a.sample(cond, 2, generator=torch.Generator().manual_seed(0)).image
        y = b.eval().sample(cond, 2, generator=torch.Generator().manual_seed(0)).image
    assert torch.equal(x, y)


def test_fitted_cluster_sampler_travels_with_save_pretrained(reg, tmp_path):
    """The k-means centres are buffers of the sampler, a submodule of the model: they are in
    ``model.state_dict()`` (``sampler.centers``, ``sampler.valid``) and travel through
    ``save_pretrained``/``synth.load`` like any part's state; an unfitted sampler saves its
    empty buffers and loads as unfitted (the same keys either way, loaded strictly)."""
    model = _cluster_model()
    assert isinstance(model.sampler, torch.nn.Module)
    assert {"sampler.centers", "sampler.valid"} <= set(model.state_dict())
    unfitted = synth.load(model.save_pretrained(tmp_path / "unfitted"))
    assert not unfitted.sampler.fitted
    assert unfitted.sampler.centers.shape == (0, 2, 0)
    model.sampler.fit(model, _fit_items(), batch_size=2)
    assert model.sampler.fitted
    loaded = synth.load(model.save_pretrained(tmp_path / "fitted"))
    assert loaded.sampler.fitted
    for key in ("sampler.centers", "sampler.valid"):
        value = model.state_dict()[key]
        assert value.numel() > 0
        assert torch.equal(loaded.state_dict()[key], value), key
        assert loaded.state_dict()[key].dtype == value.dtype
    _same_samples(model, loaded)
    # plain torch: a strict load_state_dict into a freshly composed (unfitted) model
    fresh = _cluster_model()
    fresh.load_state_dict(model.state_dict())
    _same_samples(model, fresh)


def _write_format_1(path, model: synth.SynthesisModel, sampler_state: dict) -> None:
    """What synth-core wrote before the sampler was a module (format_version 1): the parts'
    state plus ``sampler.<key>`` tensors only once fitted."""
    from safetensors.torch import save_file

    path.mkdir()
    state = {
        k: v.detach().clone().contiguous()
        for k, v in model.state_dict().items()
        if not k.startswith("sampler.")
    }
    state.update({f"sampler.{k}": v.clone() for k, v in sampler_state.items()})
    save_file(state, str(path / "model.safetensors"), {"format": "pt"})
    meta = {
        "format": "synth",
        "format_version": 1,
        "synth_core": synth.__version__,
        "plugins": model.plugin_versions(),
        "spec": model.spec.model_dump(mode="json"),
    }
    (path / "synth.json").write_text(json.dumps(meta))


def test_format_1_files_with_sampler_keys_still_load(reg, tmp_path):
    model = _cluster_model()
    _write_format_1(tmp_path / "unfitted", model, {})
    assert not synth.load(tmp_path / "unfitted").sampler.fitted
    model.sampler.fit(model, _fit_items(), batch_size=2)
    old_state = {"centers": model.sampler.centers, "valid": model.sampler.valid}
    _write_format_1(tmp_path / "fitted", model, old_state)
    loaded = synth.load(tmp_path / "fitted")
    assert torch.equal(loaded.sampler.centers, model.sampler.centers)
    assert torch.equal(loaded.sampler.valid, model.sampler.valid)
    _same_samples(model, loaded)
    # the current format is strict about the sampler's keys like any other part's
    from safetensors.torch import load_file, save_file

    path = model.save_pretrained(tmp_path / "current")
    state = load_file(str(path / "model.safetensors"))
    state.pop("sampler.valid")
    save_file(state, str(path / "model.safetensors"))
    with pytest.raises(ValueError, match=r"missing keys \['sampler.valid'\]"):
        synth.load(path)


@pytest.mark.parametrize("seed", [0, 1])
def test_instance_average_dense_keys_and_sort_agree(seed):
    """Cityscapes-style ids (a small range: keys used directly) and sparse ids (a stable sort)
    give the looped reference's means."""
    from synth_pix2pixhd import encoders

    _, inst = _maps(2, 64, 96, 9, seed)  # ids k·1000 + 7: 2 · span ~ 16000 < 2·pixels + 4096
    assert encoders._dense_keys(inst) is not None
    sparse = inst * 10**6
    assert encoders._dense_keys(sparse) is None
    x = torch.randn(2, 3, 64, 96, generator=torch.Generator().manual_seed(seed))
    ref = looped_instance_average(x, inst[:, None])
    torch.testing.assert_close(instance_average(x, inst), ref, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(instance_average(x, sparse), ref, rtol=1e-5, atol=1e-5)


def test_encoder_native_instance_norm_matches_the_fp32_one():
    from synth.nn.norms import instance_normalize
    from synth_pix2pixhd import encoders

    y = torch.randn(2, 5, 7, 9) * 3 + 1
    torch.testing.assert_close(encoders._instance_norm(y), instance_normalize(y))
    one = torch.randn(2, 5, 1, 1)
    assert torch.equal(encoders._instance_norm(one), torch.zeros_like(one))


@pytest.mark.parametrize("b", [1, 3])
def test_encoder_channels_last_cpu_path_matches_the_plain_one(b):
    """CPU fp32 runs the encoder in channels_last with the norm as a batch norm over the
    pixels; the result is the NCHW computation's (float rounding) and comes back contiguous."""
    from synth.nn.norms import instance_normalize
    from synth_pix2pixhd import InstanceEncoder, encoders

    y = torch.randn(b, 8, 6, 10).contiguous(memory_format=torch.channels_last)
    normed = encoders._instance_norm_nhwc(y)
    torch.testing.assert_close(normed, instance_normalize(y))
    # an unambiguous NHWC layout (batch stride H·W·C), or the next conv falls back to NCHW
    assert normed.stride() == (6 * 10 * 8, 1, 10 * 8, 8)
    torch.manual_seed(0)
    enc = InstanceEncoder(channels=3, nef=4, n_downsampling=2).eval()
    image = torch.rand(b, 3, 16, 24) * 2 - 1
    with torch.no_grad():
        got = enc.encode(image)
        x = image
        for i, conv in enumerate([enc.conv_in, *enc.down, *enc.up]):
            x = conv(torch.nn.functional.pad(x, (3, 3, 3, 3), mode="reflect") if i == 0 else x)
            x = instance_normalize(x).relu()
        want = torch.tanh(enc.conv_out(torch.nn.functional.pad(x, (3, 3, 3, 3), mode="reflect")))
    assert got.is_contiguous()
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5)
