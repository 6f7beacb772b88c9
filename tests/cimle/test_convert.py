"""from_official_srim: a minimal faithful re-implementation of the official IMRRDBNet layout
(niopeng/SRIM-pytorch, BasicSR blocks) loads into cimle.rrdb_generator with equal outputs."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import synth
from synth_cimle import from_official_srim, infer_srim_config
from synth_cimle.convert import read_srim_options


class _RDB5C(nn.Module):  # BasicSR ResidualDenseBlock_5C: conv_block -> Sequential(conv[, act])
    def __init__(self, nf, gc):
        super().__init__()
        act = lambda: nn.LeakyReLU(0.2, True)  # noqa: E731
        self.conv1 = nn.Sequential(nn.Conv2d(nf, gc, 3, 1, 1), act())
        self.conv2 = nn.Sequential(nn.Conv2d(nf + gc, gc, 3, 1, 1), act())
        self.conv3 = nn.Sequential(nn.Conv2d(nf + 2 * gc, gc, 3, 1, 1), act())
        self.conv4 = nn.Sequential(nn.Conv2d(nf + 3 * gc, gc, 3, 1, 1), act())
        self.conv5 = nn.Sequential(nn.Conv2d(nf + 4 * gc, nf, 3, 1, 1))

    def forward(self, x):
        x1 = self.conv1(x)
        x2 = self.conv2(torch.cat((x, x1), 1))
        x3 = self.conv3(torch.cat((x, x1, x2), 1))
        x4 = self.conv4(torch.cat((x, x1, x2, x3), 1))
        x5 = self.conv5(torch.cat((x, x1, x2, x3, x4), 1))
        return x5.mul(0.2) + x


class _RRDB(nn.Module):
    def __init__(self, nf, gc):
        super().__init__()
        self.RDB1, self.RDB2, self.RDB3 = _RDB5C(nf, gc), _RDB5C(nf, gc), _RDB5C(nf, gc)

    def forward(self, x):
        return self.RDB3(self.RDB2(self.RDB1(x))).mul(0.2) + x


class _Shortcut(nn.Module):
    def __init__(self, sub):
        super().__init__()
        self.sub = sub

    def forward(self, x):
        return x + self.sub(x)


class _OfficialIMRRDBNet(nn.Module):
    """model = sequential(fea_conv, Shortcut(RRDBs + LR_conv), *upconv blocks, HR_conv0, HR_conv1);
    input concat(LR in [0,1], code); output (tanh + 1) / 2 or sigmoid, in [0, 1]."""

    def __init__(self, code_nc, nf, nb, gc, n_up, last_act="tanh", mode="nearest"):
        super().__init__()
        self.last_act = last_act
        layers = [nn.Conv2d(3 + code_nc, nf, 3, 1, 1)]
        layers.append(
            _Shortcut(
                nn.Sequential(*[_RRDB(nf, gc) for _ in range(nb)], nn.Conv2d(nf, nf, 3, 1, 1))
            )
        )
        for _ in range(n_up):
            layers += [
                nn.Upsample(scale_factor=2, mode=mode),
                nn.Conv2d(nf, nf, 3, 1, 1),
                nn.LeakyReLU(0.2, True),
            ]
        layers += [nn.Conv2d(nf, nf, 3, 1, 1), nn.LeakyReLU(0.2, True), nn.Conv2d(nf, 3, 3, 1, 1)]
        self.model = nn.Sequential(*layers)

    def forward(self, lr01, code):
        y = self.model(torch.cat((lr01, code), 1))
        return torch.sigmoid(y) if self.last_act == "sigmoid" else (torch.tanh(y) + 1) / 2


@pytest.mark.parametrize(
    ("n_up", "nb", "act", "mode"),
    [(2, 1, "tanh", "bilinear"), (3, 1, "sigmoid", "nearest"), (2, 2, "sigmoid", "bilinear")],
)
def test_official_srim_outputs_equal(n_up, nb, act, mode):
    torch.manual_seed(0)
    official = _OfficialIMRRDBNet(3, 8, nb, 4, n_up, last_act=act, mode=mode).eval()
    for p in official.parameters():  # non-trivial weights
        p.data.normal_(0, 0.1)
    sd = official.state_dict()
    if n_up == 3:
        assert {
            "model.3.weight",
            "model.6.weight",
            "model.9.weight",
            "model.11.weight",
            "model.13.weight",
        } <= set(sd)
        assert "model.1.sub.0.RDB3.conv5.0.weight" in sd and f"model.1.sub.{nb}.weight" in sd
    cfg = infer_srim_config(sd)
    assert cfg == {"nf": 8, "nb": nb, "gc": 4, "code_channels": 3, "scale": 2**n_up}
    gen = from_official_srim(sd, last_act=act, upsample=mode)
    g = torch.Generator().manual_seed(1)
    lr01 = torch.rand(2, 3, 6, 6, generator=g)
    code = torch.randn(2, 3, 6, 6, generator=g)
    with torch.no_grad():
        want = official(lr01, code)
        s = 2**n_up
        got = gen(
            synth.Condition(image=lr01 * 2 - 1, size=(6 * s, 6 * s)), synth.Latents(spatial=code)
        ).image
    torch.testing.assert_close((got + 1) / 2, want, rtol=1e-5, atol=1e-6)


def test_converter_reads_files_and_rejects_mismatches(tmp_path):
    from safetensors.torch import save_file

    torch.manual_seed(0)
    sd = _OfficialIMRRDBNet(code_nc=5, nf=8, nb=1, gc=4, n_up=1).state_dict()
    path = tmp_path / "srim.safetensors"
    save_file({k: v.contiguous() for k, v in sd.items()}, str(path))
    gen = from_official_srim(path, upsample="nearest", last_act="tanh")
    assert gen.config.code_channels == 5 and gen.config.scale == 2
    with pytest.raises(ValueError, match="nf"):
        from_official_srim(sd, nf=16, last_act="tanh", upsample="nearest")
    with pytest.raises(ValueError, match="IMRRDBNet"):
        from_official_srim({"foo.weight": torch.zeros(1)})


def test_converter_never_guesses_the_output_or_upsampling(tmp_path):
    """Item 17: the weights cannot tell sigmoid from tanh (nor nearest from bilinear); the
    converter requires them or reads them from the official options file."""
    torch.manual_seed(0)
    official = _OfficialIMRRDBNet(2, 8, 1, 4, 1, last_act="sigmoid").eval()
    sd = official.state_dict()
    with pytest.raises(ValueError, match="last_act"):
        from_official_srim(sd)
    with pytest.raises(ValueError, match="upsample"):
        from_official_srim(sd, last_act="sigmoid")
    opts = tmp_path / "train_srim_cicada_x8.json"
    opts.write_text(
        '{"name": "x" // a comment, as in the official files\n'
        ', "network_G": {"which_model_G": "IMRRDB_net", "nb": 1\n'
        '//    , "upsample_kernel_mode": "bilinear"\n'
        ', "last_act": "sigmoid"}}\n'
    )
    assert read_srim_options(opts) == {"last_act": "sigmoid", "upsample": "nearest"}
    gen = from_official_srim(sd, official_options=opts)
    g = torch.Generator().manual_seed(2)
    lr01, code = torch.rand(1, 3, 5, 5, generator=g), torch.randn(1, 2, 5, 5, generator=g)
    with torch.no_grad():
        got = gen(synth.Condition(image=lr01 * 2 - 1, size=(10, 10)), synth.Latents(spatial=code))
        torch.testing.assert_close((got.image + 1) / 2, official(lr01, code), atol=1e-6, rtol=1e-5)
        # the same weights read as tanh are a different network (what a silent guess made)
        wrong = from_official_srim(sd, last_act="tanh", upsample="nearest")
        other = wrong(
            synth.Condition(image=lr01 * 2 - 1, size=(10, 10)), synth.Latents(spatial=code)
        )
        assert (other.image - got.image).abs().max() > 1e-3
    with pytest.raises(ValueError, match="official_options"):
        from_official_srim(sd, official_options=opts, last_act="tanh")
    with pytest.raises(ValueError, match="last_act"):
        read_srim_options({"network_G": {"last_act": None}})
