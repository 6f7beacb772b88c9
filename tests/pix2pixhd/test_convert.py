"""Converters against the official layouts (tests/pix2pixhd/official.py is the reference)."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import save_file

from synth import Condition, Latents
from synth_pix2pixhd import convert_state_dict, from_official, to_official
from synth_pix2pixhd.encoders import InstanceEncoder

from . import official as off


def _cond(b=2, h=32, w=32, k=5, seed=0):
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, k, (b, h // 4, w // 4), generator=g)
    labels = labels.repeat_interleave(4, 1).repeat_interleave(4, 2)
    inst = torch.randint(0, 5, (b, h // 8, w // 8), generator=g)
    inst = inst.repeat_interleave(8, 1).repeat_interleave(8, 2)
    return Condition(label_map=labels, num_classes=k, instance_map=inst)


def _randomize(net):
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.2)
    return net


def test_global_generator_official_layout_and_outputs(tmp_path):
    k, feat_num = 5, 3
    ref = _randomize(off.GlobalGenerator(k + 1 + feat_num, 3, ngf=4, n_downsampling=2, n_blocks=2))
    sd = ref.state_dict()
    # official indices for 2 downsamplings and 2 blocks
    assert {key.rsplit(".", 1)[0] for key in sd} == {
        "model.1", "model.4", "model.7", "model.10.conv_block.1", "model.10.conv_block.5",
        "model.11.conv_block.1", "model.11.conv_block.5", "model.12", "model.15", "model.19",
    }  # fmt: skip
    path = tmp_path / "latest_net_G.safetensors"
    save_file({k_: v.contiguous() for k_, v in sd.items()}, str(path))
    gen = from_official(path, "G", num_classes=k, use_instances=True)
    rep = gen.conversion_report
    assert rep.ok and rep.config["feat_num"] == feat_num and rep.config["n_blocks"] == 2
    cond = _cond(k=k)
    feat = torch.randn(2, feat_num, 32, 32)
    with torch.no_grad():
        want = ref(off.official_input(cond.label_map, cond.instance_map, k, feat))
        got = gen(cond, Latents(spatial=feat)).image
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5)
    back = to_official(gen)
    assert back.keys() == sd.keys()
    assert all(torch.equal(back[key], sd[key]) for key in sd)
    again = from_official(back, "G", num_classes=k, use_instances=True)
    with torch.no_grad():
        assert torch.equal(again(cond, Latents(spatial=feat)).image, got)


@pytest.mark.parametrize("n_local", [1, 2])
def test_local_enhancer_official(n_local):
    k = 4
    ref = _randomize(
        off.LocalEnhancer(
            k + 1, 3, ngf=4, n_downsample_global=1, n_blocks_global=1,
            n_local_enhancers=n_local, n_blocks_local=2,
        )
    )  # fmt: skip
    sd = ref.state_dict()
    gen = from_official(sd, "G", num_classes=k)
    cfg = gen.conversion_report.config
    assert cfg["n_local_enhancers"] == n_local and cfg["n_blocks_local"] == 2
    assert cfg["use_instances"] and cfg["feat_num"] == 0 and cfg["ngf"] == 4
    cond = _cond(k=k, h=16 * 2**n_local, w=16 * 2**n_local)
    with torch.no_grad():
        want = ref(off.official_input(cond.label_map, cond.instance_map, k))
        got = gen(cond).image
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5)
    back = to_official(gen)
    assert back.keys() == sd.keys() and all(torch.equal(back[x], sd[x]) for x in sd)


@pytest.mark.parametrize("interm", [True, False])
def test_multiscale_discriminator_official(interm):
    k = 4
    ref = _randomize(
        off.MultiscaleDiscriminator(k + 1 + 3, ndf=4, n_layers=2, num_D=3, getIntermFeat=interm)
    )
    sd = ref.state_dict()
    d = from_official(sd, "D", num_classes=k)
    cfg = d.conversion_report.config
    assert (cfg["num_d"], cfg["n_layers"], cfg["ndf"], cfg["use_instances"]) == (3, 2, 4, True)
    cond = _cond(k=k)
    image = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        x = torch.cat([off.official_input(cond.label_map, cond.instance_map, k), image], 1)
        want = ref(x)
        got = d(image, cond)
    for s in range(3):
        torch.testing.assert_close(got.logits[s], want[s][-1], rtol=1e-4, atol=1e-5)
        if interm:
            for j, f in enumerate(got.features[s]):
                torch.testing.assert_close(f, want[s][j], rtol=1e-4, atol=1e-5)
    back = to_official(d, intermediate=interm)
    assert back.keys() == sd.keys() and all(torch.equal(back[x], sd[x]) for x in sd)


def test_encoder_official():
    ref = _randomize(off.Encoder(3, 3, ngf=4, n_downsampling=2))
    sd = ref.state_dict()
    assert sorted({int(x.split(".")[1]) for x in sd}) == [1, 4, 7, 10, 13, 17]
    enc = from_official(sd, "E")
    assert isinstance(enc, InstanceEncoder) and enc.config.channels == 3
    cond = _cond()
    image = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        want = ref(image, cond.instance_map[:, None])
        got = enc.posterior(image, cond).spatial
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5)
    back = to_official(enc)
    assert back.keys() == sd.keys() and all(torch.equal(back[x], sd[x]) for x in sd)


def test_unmapped_and_missing_keys_are_reported():
    sd = off.GlobalGenerator(6, 3, ngf=4, n_downsampling=2, n_blocks=1).state_dict()
    sd = {f"module.{k}": v for k, v in sd.items()}  # DataParallel prefix is stripped
    sd["module.model.2.running_mean"] = torch.zeros(4)
    del sd["module.model.4.bias"]
    _, _, _, rep = convert_state_dict(sd, "G", num_classes=5)
    assert rep.unmapped == ["model.2.running_mean"] and rep.missing == ["model.4.bias"]
    with pytest.raises(ValueError, match="unmapped"):
        from_official(sd, "G", num_classes=5)
    with pytest.raises(ValueError, match="num_classes"):
        from_official(sd, "G")
