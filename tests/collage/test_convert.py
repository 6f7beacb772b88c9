"""from_official against an independent re-implementation of the official Chainer networks
(tests/collage/official_reference.py) on fake snapshots in the official key layout."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import synth
from synth_collage import from_official, layer_class_maps, spatial_norms

from .official_reference import (
    official_a,
    official_auxab_arrays,
    official_b,
    official_discriminate,
    official_discriminator_arrays,
    official_encode,
    official_encoder_arrays,
    official_feature_vector,
    official_generate,
    official_generator_arrays,
    save,
)

K, Z = 5, 8
#: (resolution, multipliers, ch): the 128 px layout (blocks 2-6, b7/l7) and the 256 px one
#: (blocks 2-7, b8/l8), at tiny widths.
LAYOUTS = {128: ([8, 8, 4, 4, 2, 1], 1), 256: ([16, 16, 8, 8, 4, 2, 1], 1)}


@pytest.fixture(params=[128, 256])
def official_g(request, tmp_path, collage_registry):
    res = request.param
    mult, ch = LAYOUTS[res]
    arrays = official_generator_arrays(mult, ch, K, Z)
    return res, arrays, save(arrays, tmp_path / f"gen{res}.npz")


def test_architecture_is_inferred(official_g):
    res, _arrays, path = official_g
    model, report = from_official(path, return_report=True)
    g = model.generator.config
    assert (g.resolution, g.num_classes, g.z_dim, g.bottom_width) == (res, K, Z, 4)
    assert g.channel_multipliers == LAYOUTS[res][0]
    assert report.unmapped == [] and report.missing == []
    assert all(k.endswith("/N") for k in report.ignored)
    assert not model.training


def test_class_id_equals_official(official_g):
    res, arrays, path = official_g
    model = from_official(path)
    z = torch.randn(2, Z)
    ids = torch.tensor([1, 4])
    with torch.no_grad():
        ours = model.generate(synth.Condition(class_id=ids, num_classes=K), synth.Latents(z=z))
    ref = official_generate(arrays, z, class_id=ids)
    assert ours.image.shape == (2, 3, res, res)
    torch.testing.assert_close(ours.image, ref, rtol=0, atol=1e-4)


def _layer_sizes(res):
    n = int(np.log2(res // 4))
    return [s for i in range(n) for s in (4 * 2**i, 4 * 2 ** (i + 1))]


def test_spatial_class_maps_equal_official(official_g):
    """One channel-last map per CBN layer (official) = per-layer maps in synth's layout."""
    res, arrays, path = official_g
    model = from_official(path)
    g = np.random.default_rng(1)
    maps = []
    for s in _layer_sizes(res):
        m = g.random((2, s, s, K)).astype(np.float32) ** 4
        maps.append(m / m.sum(-1, keepdims=True))
    z = torch.randn(2, Z)
    ours_maps = {i: torch.from_numpy(m).permute(0, 3, 1, 2) for i, m in enumerate(maps)}
    assert len(spatial_norms(model.generator)) == len(maps)
    cond = synth.Condition(class_id=torch.tensor([0, 0]), num_classes=K)  # overridden everywhere
    with torch.no_grad(), layer_class_maps(model.generator, ours_maps):
        ours = model.generate(cond, synth.Latents(z=z)).image
    torch.testing.assert_close(ours, official_generate(arrays, z, weights=maps), rtol=0, atol=1e-4)
    # one full-size class map given in the Condition: every layer reads it (area-averaged)
    full = torch.from_numpy(maps[-1]).permute(0, 3, 1, 2)
    pooled = [F.adaptive_avg_pool2d(full, s).permute(0, 2, 3, 1).numpy() for s in _layer_sizes(res)]
    with torch.no_grad():
        ours = model.generate(
            synth.Condition(class_weights=full, num_classes=K), synth.Latents(z=z)
        ).image
    torch.testing.assert_close(
        ours, official_generate(arrays, z, weights=pooled), atol=1e-4, rtol=0
    )


def _random_blends(g: np.random.Generator, res: int) -> tuple[list, dict]:
    """Random blend weights per stage, as the official ``blends`` (``[2, s, s, 3]``: reference
    0, reference 1, the generated path) and as our masks of reference 1 (``{stage: [2, 1, s,
    s]}``). After l1 the generated path is zeros, so references 0 and 1 share the pixels; after
    each block the generated path (our target) is mixed with reference 1."""
    official, ours = [], {}
    for stage in range(int(np.log2(res // 4)) + 1):
        s = 4 * 2**stage
        m1 = g.random((2, s, s)).astype(np.float32)
        bl = np.zeros((2, s, s, 3), dtype=np.float32)
        keep = 0 if stage == 0 else 2
        bl[..., keep], bl[..., 1] = 1 - m1, m1
        official.append(bl)
        ours[stage] = torch.from_numpy(m1)[:, None]
    return official, ours


def _blend(model, cond, masks: dict, z0: torch.Tensor, z1: torch.Tensor):
    """One ``collage.feature_blend`` sample: target ``z0``, reference ``z1``."""
    return model.sample(
        cond,
        1,
        sampler="collage.feature_blend",
        masks=masks,
        target=synth.Latents(z=z0),
        references=[synth.Latents(z=z1)],
    )


def test_feature_blending_equals_official(official_g):
    """Official: R = 2 paths + the generated one; after l1 the blend of the two references,
    after each block the generated path mixed with reference 1 (reference 0's own path has
    weight 0 there: it lives on as the generated path = our target)."""
    res, arrays, path = official_g
    model = from_official(path)
    g = np.random.default_rng(2)
    z0, z1 = torch.randn(2, Z), torch.randn(2, Z)
    ids = torch.tensor([2, 3])
    official, ours = _random_blends(g, res)
    cond = synth.Condition(class_id=ids, num_classes=K, size=(res, res))
    with torch.no_grad():
        out = _blend(model, cond, ours, z0, z1)
    ref = official_generate(arrays, [z0, z1], class_id=ids, blends=official)
    torch.testing.assert_close(out.image, ref, rtol=0, atol=1e-4)


def test_class_maps_and_feature_blending_together_equal_official(official_g):
    """sCBN maps per layer during feature blending (the official spatial_interpolation with
    weights and blends): each input's maps serve all its paths in the batched forward."""
    res, arrays, path = official_g
    model = from_official(path)
    g = np.random.default_rng(4)
    maps = []
    for s in _layer_sizes(res):
        m = g.random((2, s, s, K)).astype(np.float32) ** 4
        maps.append(m / m.sum(-1, keepdims=True))
    z0, z1 = torch.randn(2, Z), torch.randn(2, Z)
    official, ours = _random_blends(g, res)
    cond = synth.Condition(class_id=torch.tensor([0, 0]), num_classes=K, size=(res, res))
    layer_maps = {i: torch.from_numpy(m).permute(0, 3, 1, 2) for i, m in enumerate(maps)}
    with torch.no_grad(), layer_class_maps(model.generator, layer_maps):
        out = _blend(model, cond, ours, z0, z1)
    ref = official_generate(arrays, [z0, z1], weights=maps, blends=official)
    torch.testing.assert_close(out.image, ref, rtol=0, atol=1e-4)


def test_snapshot_prefix_and_overrides(tmp_path, collage_registry):
    arrays = official_generator_arrays([4, 4, 2, 1], 2, K, Z)
    path = save(arrays, tmp_path / "snapshot.npz", prefix="updater/model:gen/")
    model = from_official(path, norm={"type": "collage.scbn", "condition": "class_weights"})
    assert model.generator.config.resolution == 32
    assert model.generator.config.norm["condition"] == "class_weights"


def test_unmapped_and_missing_keys_are_reported(tmp_path, collage_registry):
    arrays = official_generator_arrays([4, 4, 2, 1], 2, K, Z)
    arrays["extra/W"] = np.zeros(3, dtype=np.float32)
    del arrays["block3/b2/betas/W"]
    path = save(arrays, tmp_path / "odd.npz")
    with pytest.warns(UserWarning, match="unmapped"):
        _, report = from_official(path, return_report=True)
    assert report.unmapped == ["extra/W"]
    assert report.missing == ["stages.2.b2.betas.weight (file key block3/b2/betas/W)"]


def test_not_a_generator_is_a_clear_error(tmp_path, collage_registry):
    path = save({"foo/W": np.zeros((2, 2), dtype=np.float32)}, tmp_path / "x.npz")
    with pytest.raises(ValueError, match="l1/W"):
        from_official(path)
    with pytest.raises(ValueError, match="kind='Q'"):
        from_official(path, kind="Q")
    with pytest.raises(FileNotFoundError):
        from_official(tmp_path / "missing.npz")


def test_pickled_npz_is_refused(tmp_path, collage_registry):
    path = tmp_path / "pickled.npz"
    np.savez(path, **{"l1/W": np.array([object()], dtype=object)})
    with pytest.raises(ValueError, match="allow_pickle"):
        from_official(path)


# ---------------------------------------------------------------------------------------------
# discriminator
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mult", "hidden"),
    [
        ([1, 2, 4, 4], "out"),
        ([1, 2, 4, 8, 16, 16], "out"),  # snresnet.py / snresnet_256.py: c1 to the out width
        ([1, 2, 4, 4, 8, 8], "in"),  # snresnet_small.py (128 px dog+cat): c1 keeps the in width
    ],
)
def test_discriminator_equals_official(tmp_path, collage_registry, mult, hidden):
    arrays = official_discriminator_arrays(mult, 2, K, hidden=hidden)
    path = save(arrays, tmp_path / "dis.npz")
    disc, report = from_official(path, kind="D", return_report=True)
    assert report.unmapped == [] and report.missing == []
    assert disc.config.hidden == hidden and disc.config.channel_multipliers == mult
    res = 4 * 2 ** (len(mult) - 1)
    assert disc.config.resolution == res and disc.config.num_classes == K
    x = torch.rand(2, 3, res, res) * 2 - 1
    y = torch.tensor([0, 3])
    with torch.no_grad():
        ours = disc(x, synth.Condition(class_id=y, num_classes=K)).logits[0]
    ref = official_discriminate(arrays, x, y)
    torch.testing.assert_close(ours, ref, rtol=1e-4, atol=1e-4)
    with torch.no_grad():
        fv = disc.feature_vector(x)
    torch.testing.assert_close(fv, official_feature_vector(arrays, x), rtol=1e-4, atol=1e-4)


# ---------------------------------------------------------------------------------------------
# encoder
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("layout", "k"), [("small", 0), ("small", K), ("256", 0), ("256", K)])
def test_encoder_equals_official(tmp_path, collage_registry, layout, k):
    """resnetenc_small (l1, blocks 2-6, unused b7, l7) and resnetenc_256 (block1, blocks 2-7,
    l8_enc), with batch norms or the dog+cat encoders' categorical CBN."""
    arrays = official_encoder_arrays(layout, 1, Z, k)
    path = save(arrays, tmp_path / "enc.npz")
    enc, report = from_official(path, kind="E", return_report=True)
    res = 128 if layout == "small" else 256
    assert enc.config.image_size == res and enc.config.z_dim == Z and enc.config.ch == 1
    assert enc.config.num_classes == (k or None) and enc.final_norm is None
    assert report.unmapped == [] and report.missing == []
    assert {k.split("/")[0] for k in report.ignored if not k.endswith("/N")} <= {"b7"}
    assert not enc.training
    x = torch.rand(2, 3, res, res) * 2 - 1
    y = torch.tensor([1, 4])
    cond = synth.Condition(image=x, class_id=y, num_classes=K)
    with torch.no_grad():
        z = enc.posterior(x, cond).z
    torch.testing.assert_close(z, official_encode(arrays, x, y if k else None), rtol=0, atol=1e-4)


def test_encoder_b7_on_request_and_errors(tmp_path, collage_registry):
    arrays = official_encoder_arrays("small", 1, Z)
    path = save(arrays, tmp_path / "enc.npz")
    enc, report = from_official(path, kind="E", return_report=True, final_norm=True)
    torch.testing.assert_close(enc.final_norm.running_var, torch.from_numpy(arrays["b7/avg_var"]))
    assert not any(k.startswith("b7/") and not k.endswith("/N") for k in report.ignored)
    gen = save(official_generator_arrays([4, 4, 2, 1], 2, K, Z), tmp_path / "gen.npz")
    with pytest.raises(ValueError, match="prelu_out/W"):
        from_official(gen, kind="E")


# ---------------------------------------------------------------------------------------------
# auxiliary networks A and B
# ---------------------------------------------------------------------------------------------


def test_auxiliary_networks_equal_official(tmp_path, collage_registry):
    arrays = official_auxab_arrays(Z, 12, 40, 10, K)
    path = save(arrays, tmp_path / "auxab.npz")
    aux, report = from_official(path, kind="AB", return_report=True)
    assert (aux.z_dim, aux.zeta_dim, aux.a1.out_features, aux.b1.out_features) == (Z, 40, 12, 10)
    assert report.unmapped == [] and report.missing == []
    assert "_fast_alpha/W" in report.ignored and "l1/W" in report.ignored
    z = torch.randn(3, Z)
    with torch.no_grad():
        zeta = aux.embed(z)
        torch.testing.assert_close(zeta, official_a(arrays, z), rtol=0, atol=1e-4)
        torch.testing.assert_close(aux.project(zeta), official_b(arrays, zeta), rtol=0, atol=1e-4)
    # the generator half of the same file: kind="G", A/B keys known and ignored
    model, g_report = from_official(path, return_report=True)
    assert g_report.unmapped == [] and "lA1/W" in g_report.ignored
    with torch.no_grad():
        ours = model.generate(
            synth.Condition(class_id=torch.tensor([0, 2, 4]), num_classes=K), synth.Latents(z=z)
        ).image
    ref = official_generate(arrays, z, class_id=torch.tensor([0, 2, 4]))
    torch.testing.assert_close(ours, ref, rtol=0, atol=1e-4)
    with pytest.raises(ValueError, match="lA1/W"):
        from_official(save(official_encoder_arrays("small", 1, Z), tmp_path / "e.npz"), kind="AB")


def test_trainer_snapshot_with_several_networks(tmp_path, collage_registry):
    """A trainer snapshot holds gen, enc and optimizer states under prefixes: each kind finds
    its own network."""
    gen = official_generator_arrays([4, 4, 2, 1], 2, K, Z)
    enc = official_encoder_arrays("small", 1, Z, K)
    arrays = {f"updater/model:gen/{k}": v for k, v in gen.items()}
    arrays.update({f"updater/model:enc/{k}": v for k, v in enc.items()})
    arrays.update({f"updater/optimizer:enc/{k}/msg": v for k, v in enc.items()})
    path = save(arrays, tmp_path / "snapshot_iter_1000.npz")
    model = from_official(path)
    assert model.generator.config.resolution == 32
    encoder = from_official(path, kind="E")
    x = torch.rand(1, 3, 128, 128) * 2 - 1
    y = torch.tensor([3])
    with torch.no_grad():
        z = encoder.posterior(x, synth.Condition(image=x, class_id=y, num_classes=K)).z
    torch.testing.assert_close(z, official_encode(enc, x, y), rtol=0, atol=1e-4)
