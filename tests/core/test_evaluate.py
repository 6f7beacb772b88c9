"""Evaluation (nested-scale paper §4, Tables 1–3, Fig. 8): LPIPS diversity per pyramid scale,
identity recovery of given samples and its ties, the disentanglement curve on a toy generator
whose scale k can only change the finer levels, ``synth.metrics.evaluate``, the curve chart,
and ``synth evaluate`` end to end on saved models and the demo data set."""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from pydantic import Field
from torch import Tensor, nn

import synth
import synth.viz
from synth.cli import main
from synth.metrics import DisentanglementCurve, IdentityRecovery, LPIPSDiversity, evaluate

SIZE = 32
K = 4  # label classes


def _g(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _images(*shape: int, seed: int = 0) -> Tensor:
    return torch.tanh(torch.randn(*shape, generator=_g(seed)))


def _cond(b: int = 2, seed: int = 0) -> synth.Condition:
    return synth.Condition(
        label_map=torch.randint(0, K, (b, SIZE, SIZE), generator=_g(seed)), num_classes=K
    )


def _reference_lpips(metric: LPIPSDiversity):
    """The lpips package's own network holding the metric's (random) trunk and linear layers."""
    import lpips

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = lpips.LPIPS(net="alex", pretrained=True, pnet_rand=True, verbose=False)
    ref.load_state_dict(metric.lpips.model.state_dict())
    return ref.eval()


@torch.no_grad()
def _hand_diversity(ref, samples: Tensor) -> list[float]:
    """Per-input mean LPIPS over all pairs, by a double loop calling lpips.LPIPS directly."""
    out = []
    for group in samples:
        n = group.shape[0]
        ds = [
            float(ref(group[i : i + 1], group[j : j + 1]))
            for i in range(n)
            for j in range(i + 1, n)
        ]
        out.append(sum(ds) / len(ds))
    return out


# --------------------------------------------------------------------------- a toy pyramid


class ToyPyramid(synth.Generator):
    """Levels at ``size / scales[k]``: ``raw_k = up2(raw_{k-1}) + conv_k(one-hot) +
    amps[k] · (basis_k · styles[k])``, ``level_k = tanh(raw_k)``. Scale k's code therefore
    changes levels k.. only, by an amount set by ``amps[k]`` (0: not at all)."""

    has_pyramid: ClassVar[bool] = True
    requires: ClassVar[frozenset[str]] = frozenset({"label_map", "styles"})

    class Config(synth.PartConfig):
        num_classes: int = K
        style_dim: int = 4
        size: int = SIZE
        scales: list[int] = [4, 2, 1]
        amps: list[float] = Field(default_factory=lambda: [1.0, 0.3, 0.0])

    def __init__(self, config=None, **kwargs) -> None:
        super().__init__(config, **kwargs)
        c = self.config
        self.stages = nn.ModuleList(nn.Conv2d(c.num_classes, 3, 1) for _ in c.scales)
        self.basis = nn.ParameterList(
            nn.Parameter(torch.randn(c.style_dim, 3, c.size // s, c.size // s)) for s in c.scales
        )
        self.stage_channels, self.stage_scales = [3] * len(c.scales), list(c.scales)
        self.pyramid_scales = list(c.scales)

    def forward(self, cond, latents=None, *, return_features=False):
        raw, levels = None, []
        for k, (stage, basis, s) in enumerate(zip(self.stages, self.basis, self.config.scales)):
            size = (cond.size[0] // s, cond.size[1] // s)
            base = stage(cond.one_hot(size))
            detail = torch.einsum("bs,schw->bchw", latents.styles[k], basis) * self.config.amps[k]
            up = 0 if raw is None else F.interpolate(raw, scale_factor=2, mode="nearest")
            raw = up + base + detail
            levels.append(torch.tanh(raw))
        return synth.SynthesisOutput(image=levels[-1], pyramid=levels)


TOY = {"generator": {"type": "evaltest.toy_pyramid"}, "injector": {"type": "core.gaussian"}}
PLAIN = {  # no per-scale codes, no pyramid
    "generator": {
        "type": "core.simple_generator",
        "num_classes": K,
        "ngf": 4,
        "num_stages": 2,
        "z_dim": 4,
    },
    "injector": {"type": "core.gaussian"},
}


@pytest.fixture
def toy_registry(synth_registry):
    synth_registry.add_part("evaltest.toy_pyramid", ToyPyramid)
    return synth_registry


def _toy(seed: int = 0, **generator) -> synth.SynthesisModel:
    torch.manual_seed(seed)
    spec = {**TOY, "generator": {**TOY["generator"], **generator}}
    return synth.compose(spec).eval()


def test_toy_scale_k_leaves_coarser_levels_bit_identical(toy_registry):
    model, cond = _toy(), _cond(2)
    with torch.no_grad():
        a = model.generate(cond, generator=_g(0))
        styles = list(a.latents.styles)
        styles[1] = torch.randn(styles[1].shape, generator=_g(1))
        b = model.generator(cond, synth.Latents(styles=styles))
    assert torch.equal(a.pyramid[0], b.pyramid[0])
    assert not torch.equal(a.pyramid[1], b.pyramid[1])
    assert a.pyramid[-1] is a.image


# --------------------------------------------------------------------------- per-scale diversity


def test_per_scale_diversity_matches_a_double_loop_per_level():
    torch.manual_seed(0)
    metric = LPIPSDiversity(weights="none", per_scale=True)
    ref = _reference_lpips(metric)
    b, n = 2, 3
    levels = [_images(b, n, 3, s, s, seed=s) for s in (8, 16, SIZE)]
    metric.update(levels[-1], pyramid=levels)
    flat = [lv.flatten(0, 1) for lv in levels]  # the (b n) form a sampler returns
    metric.update(
        synth.SynthesisOutput(image=flat[-1], pyramid=flat), n=n
    )  # an output: its pyramid is read
    result = metric.compute()
    hand = []
    for lv in levels:  # LPIPS's AlexNet needs >= 31 px: small levels are enlarged bilinearly
        big = F.interpolate(lv.flatten(0, 1), size=(SIZE, SIZE), mode="bilinear")
        hand.append(_hand_diversity(ref, big.unflatten(0, (b, n))) * 2)
    assert result["per_scale"] == pytest.approx([np.mean(h) for h in hand], rel=1e-5)
    assert result["per_scale_std"] == pytest.approx([np.std(h) for h in hand], rel=1e-4, abs=1e-7)
    assert result["lpips_diversity"] == pytest.approx(result["per_scale"][-1], rel=1e-6)
    settings = result["settings"]
    assert settings["levels"] == [[8, 8], [16, 16], [SIZE, SIZE]]
    assert settings["lpips_sizes"] == [[SIZE, SIZE]] * 3
    assert settings["min_size"] == 32 and settings["small_levels"] == "upsample"
    assert settings["n"] == n and result["num_inputs"] == 2 * b


def test_per_scale_diversity_can_skip_small_levels_and_checks_its_inputs():
    torch.manual_seed(0)
    metric = LPIPSDiversity(weights="none", per_scale=True, small_levels="skip")
    ref = _reference_lpips(metric)
    levels = [_images(2, 3, 3, s, s, seed=s) for s in (16, SIZE)]
    metric.update(levels[-1], pyramid=levels)
    result = metric.compute()
    assert result["per_scale"][0] is None and result["settings"]["lpips_sizes"][0] is None
    assert result["per_scale"][1] == pytest.approx(np.mean(_hand_diversity(ref, levels[1])))
    with pytest.raises(ValueError, match="per_scale needs the samples' image pyramid"):
        metric.update(levels[-1])
    with pytest.raises(ValueError, match="the last level is the output image"):
        metric.update(levels[-1], pyramid=levels[:1])
    with pytest.raises(ValueError, match="pyramid levels of sizes"):
        metric.update(levels[-1], pyramid=[_images(2, 3, 3, 8, 8), levels[-1]])
    with pytest.raises(ValueError, match="set per_scale: true"):
        LPIPSDiversity(weights="none").update(levels[-1], pyramid=levels)
    # without per_scale the result is what it always was (no per-scale keys)
    plain = LPIPSDiversity(weights="none")
    plain.update(synth.SynthesisOutput(image=levels[1].flatten(0, 1), pyramid=[]), n=3)
    assert "per_scale" not in plain.compute()


# --------------------------------------------------------------------------- identity recovery


def test_identity_recovery_ranks_given_samples_like_a_hand_computation():
    samples = _images(3, 4, 3, 8, 8, seed=1)
    target = _images(3, 3, 8, 8, seed=2)
    metric = IdentityRecovery(n=4, distance={"type": "core.l1"}, batch_size=5)
    metric.update(samples, target=target, name="grouped")
    out = synth.SynthesisOutput(image=samples.flatten(0, 1))  # a sampler's (b n) output
    metric.update(out, target=target, name="flat")
    hand = (samples - target[:, None]).abs().mean((2, 3, 4)).min(1).values
    result = metric.compute()
    assert result["shortest_distance"] == pytest.approx(
        {"grouped": float(hand.mean()), "flat": float(hand.mean())}
    )
    assert result["recovery_count"] == pytest.approx({"grouped": 1.5, "flat": 1.5})
    assert result["ties"] == 3
    assert result["settings"]["sources"] == {"grouped": "ranked", "flat": "ranked"}
    with pytest.raises(ValueError, match="not n=4 per target image"):
        metric.update(samples[:, :3], target=target)


def test_identity_recovery_ties_within_a_tolerance_are_split():
    a = torch.tensor([0.1, 0.2, 0.4])
    b = torch.tensor([0.1000001, 0.5, 0.3])
    c = torch.tensor([0.3, 0.2, 0.6])
    exact = IdentityRecovery(distance="core.l1")
    loose = IdentityRecovery(distance="core.l1", tie_tolerance=1e-3)
    for metric in (exact, loose):
        for name, d in (("a", a), ("b", b), ("c", c)):
            metric.update(d, name=name)
    # exact: input 0 a; input 1 a and c tie; input 2 b
    r = exact.compute()
    assert r["recovery_count"] == pytest.approx({"a": 1.5, "b": 1.0, "c": 0.5})
    assert r["ties"] == 1 and r["settings"]["tie_tolerance"] == 0.0
    # 1e-3: input 0 a and b tie as well
    r = loose.compute()
    assert r["recovery_count"] == pytest.approx({"a": 1.0, "b": 1.5, "c": 0.5})
    assert sum(r["recovery_percent"].values()) == pytest.approx(100.0)
    assert r["ties"] == 2


# --------------------------------------------------------------------------- the curve


@torch.no_grad()
def _hand_curve(model, cond, m: int, seed: int, ref) -> Tensor:
    """Fig. 8 by loops: per input and scale, m images one at a time, LPIPS of every pair."""
    g = _g(seed)
    centre = model.injector.prior(cond, g)
    cond_m = cond.repeat_interleave(m)
    out = torch.zeros(cond.batch_size, len(centre.styles))
    for k in range(len(centre.styles)):
        fresh = model.injector.prior(cond_m, g).styles[k]  # the draws the metric makes
        for b in range(cond.batch_size):
            images = []
            for j in range(m):
                styles = [s[b : b + 1] for s in centre.styles]
                styles[k] = fresh[b * m + j : b * m + j + 1]
                images.append(model.generator(cond[b], synth.Latents(styles=styles)).image)
            out[b, k] = _hand_diversity(ref, torch.cat(images)[None])[0]
    return out


def test_curve_matches_a_hand_loop_and_is_zero_and_monotone_where_it_must_be(toy_registry):
    model, cond, m = _toy(), _cond(2), 4
    torch.manual_seed(0)
    metric = DisentanglementCurve(weights="none", m=m)
    ref = _reference_lpips(metric.diversity)
    calls: list[int] = []
    forward = model.generator.forward

    def counting(c, latents=None, **kw):
        calls.append(c.batch_size)
        return forward(c, latents, **kw)

    model.generator.forward = counting
    got = metric.per_input(model, cond, _g(3))
    assert calls == [2 * m] * 3  # one generator call per scale, B·m images each
    del model.generator.forward
    torch.testing.assert_close(got, _hand_curve(model, cond, m, 3, ref), rtol=1e-4, atol=1e-6)
    metric.update(model, cond, generator=_g(3))
    metric.update(model, _cond(2, seed=1), name="model", generator=_g(4))
    result = metric.compute()
    curve = result["curve"]["model"]
    # scale 2's code is multiplied by 0: no variation; coarse codes change more than fine ones
    assert curve[2] < 1e-6 < curve[1] < curve[0]
    assert result["monotone"] == {"model": True}
    assert result["num_inputs"] == {"model": 4}
    settings = result["settings"]
    assert settings["codes"] == "prior draws" and settings["m"] == m
    assert settings["pyramid_scales"] == {"model": [4, 2, 1]}
    assert settings["weights"] == "none" and settings["resolution"] == [SIZE, SIZE]


def test_curve_around_the_centre_and_non_monotone_decoders(toy_registry):
    cond = _cond(2)
    torch.manual_seed(0)
    near = DisentanglementCurve(weights="none", m=3, sigma=0.05)
    far = DisentanglementCurve(weights="none", m=3, sigma=1.0)
    far.diversity.lpips.load_state_dict(near.diversity.lpips.state_dict())
    model = _toy()
    near.update(model, cond, generator=_g(0))
    far.update(model, cond, generator=_g(0))
    a, b = near.compute()["curve"]["model"], far.compute()["curve"]["model"]
    assert a[0] < b[0] and a[1] < b[1] and max(a[2], b[2]) < 1e-6
    assert near.compute()["settings"]["codes"] == "centre + sigma * eps"
    # a plain decoder whose finest code matters most: the curve rises
    rising = DisentanglementCurve(weights="none", m=3)
    rising.diversity.lpips.load_state_dict(near.diversity.lpips.state_dict())
    rising.update(_toy(amps=[0.0, 0.1, 1.0]), cond, name="plain", generator=_g(0))
    assert rising.compute()["monotone"] == {"plain": False}


def test_curve_needs_per_scale_codes(synth_registry):
    torch.manual_seed(0)
    metric = DisentanglementCurve(weights="none", m=2)
    with pytest.raises(ValueError, match=r"no per-scale codes \(Latents.styles\)"):
        metric.update(synth.compose(PLAIN), _cond(1))
    with pytest.raises(ValueError, match="nothing to compute"):
        metric.compute()


def test_curve_chart(tmp_path):
    path = synth.viz.disentanglement_curve(
        {"ours": [0.3, 0.1, 0.02], "plain": [0.1, None, 0.2]},
        tmp_path / "sub" / "curve.png",
        x_labels=["8×8", "16×16", "32×32"],
    )
    assert Image.open(path).size == (640, 420)
    again = synth.viz.disentanglement_curve(
        {"ours": [0.3, 0.1, 0.02], "plain": [0.1, None, 0.2]},
        tmp_path / "again.png",
        x_labels=["8×8", "16×16", "32×32"],
    )
    assert path.read_bytes() == again.read_bytes()
    one = synth.viz.disentanglement_curve([0.2, 0.1], tmp_path / "one.png", size=(320, 240))
    assert Image.open(one).size == (320, 240)
    empty = synth.viz.disentanglement_curve({}, tmp_path / "empty.png")
    assert Image.open(empty).size == (640, 420)


# --------------------------------------------------------------------------- evaluate()


def _pairs(num: int, b: int = 2) -> list[tuple[synth.Condition, Tensor]]:
    return [(_cond(b, seed=i), _images(b, 3, SIZE, SIZE, seed=10 + i)) for i in range(num)]


def test_evaluate_runs_every_metric_on_the_same_inputs(toy_registry):
    torch.manual_seed(0)
    toy, plain = _toy(), synth.compose(PLAIN).eval()
    seen: list[tuple[str, int, int | None]] = []
    result = evaluate(
        {"toy": toy, "again": toy, "plain": plain},
        _pairs(2),
        n=3,
        m=3,
        limit=3,
        lpips={"weights": "none"},
        progress=lambda *a: seen.append(a),
    )
    models = result["models"]
    assert [e["num_inputs"] for e in models.values()] == [3, 3, 3]  # limit cuts batch 2
    assert seen[:2] == [("toy", 2, 3), ("toy", 3, 3)] and len(seen) == 6
    # the same model twice draws the same samples: equal numbers, a tie on every input
    assert models["toy"]["lpips_diversity"]["lpips_diversity"] == pytest.approx(
        models["again"]["lpips_diversity"]["lpips_diversity"]
    )
    ident = result["identity_recovery"]
    assert ident["shortest_distance"]["toy"] == ident["shortest_distance"]["again"]
    assert ident["recovery_count"]["toy"] == ident["recovery_count"]["again"]
    assert sum(ident["recovery_percent"].values()) == pytest.approx(100.0)
    assert ident["ties"] >= 1 and ident["num_inputs"] == 3
    assert ident["settings"]["distance"]["weights"] == "none"
    assert (
        models["toy"]["identity_recovery"]["recovery_percent"] == ident["recovery_percent"]["toy"]
    )
    # per scale for the pyramid, the curve for per-scale codes; the plain model has neither
    assert len(models["toy"]["lpips_diversity"]["per_scale"]) == 3
    assert "per_scale" not in models["plain"]["lpips_diversity"]
    assert models["toy"]["disentanglement_curve"]["monotone"] is True
    assert set(result["disentanglement_curve"]["curve"]) == {"toy", "again"}
    assert "Latents.styles" in models["plain"]["skipped"]["disentanglement_curve"]
    assert result["settings"]["metrics"] == ["diversity", "identity", "disentanglement"]
    assert result["settings"]["num_inputs"] == 3 and result["settings"]["n"] == 3


def test_evaluate_errors(toy_registry):
    torch.manual_seed(0)
    plain = synth.compose(PLAIN).eval()
    kw = {"n": 2, "lpips": {"weights": "none"}}
    with pytest.raises(ValueError, match=r"model 'plain'.*per-scale codes"):
        evaluate({"plain": plain}, _pairs(1), metrics=["disentanglement"], **kw)
    with pytest.raises(ValueError, match="choose among diversity, identity, disentanglement"):
        evaluate([plain], _pairs(1), metrics=["lpips"], **kw)
    with pytest.raises(TypeError, match="one-pass iterator"):
        evaluate([plain], iter(_pairs(1)), **kw)
    with pytest.raises(TypeError, match="make_collate"):
        evaluate([plain], [torch.zeros(2)], **kw)
    with pytest.raises(ValueError, match="at least 2 samples"):
        evaluate([plain], _pairs(1), n=1, lpips={"weights": "none"})
    with pytest.raises(synth.WeightsNotFoundError, match="FID"):
        evaluate([plain], _pairs(1), metrics=["fid"], **kw)
    only = evaluate({"p": plain}, _pairs(1), metrics=["identity"], **kw)
    assert set(only["models"]["p"]) == {
        "generator",
        "has_pyramid",
        "num_inputs",
        "identity_recovery",
    }
    assert "disentanglement_curve" not in only


# --------------------------------------------------------------------------- synth evaluate

DEMO = '{"type": "demo", "size": 32, "num_classes": 4}'


def _run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture
def model_dirs(toy_registry, tmp_path: Path) -> list[Path]:
    torch.manual_seed(0)
    _toy().save_pretrained(tmp_path / "toy")
    synth.compose(PLAIN).save_pretrained(tmp_path / "plain")
    return [tmp_path / "toy", tmp_path / "plain"]


def test_synth_evaluate_end_to_end(capsys, tmp_path, model_dirs):
    out_dir = tmp_path / "eval"
    code, out, err = _run(
        capsys, "evaluate", *map(str, model_dirs), "--data", DEMO, "--limit", "2",
        "-n", "3", "-m", "3", "--batch-size", "2", "--lpips-weights", "none", "--out", str(out_dir),
    )  # fmt: skip
    assert code == 0, err
    result = json.loads((out_dir / "metrics.json").read_text())
    assert set(result) == {"models", "identity_recovery", "disentanglement_curve", "settings"}
    toy, plain = result["models"]["toy"], result["models"]["plain"]
    assert set(toy) >= {"lpips_diversity", "identity_recovery", "disentanglement_curve"}
    assert toy["model_dir"] == str(model_dirs[0]) and toy["num_inputs"] == 2
    assert len(toy["lpips_diversity"]["per_scale"]) == 3
    assert toy["lpips_diversity"]["settings"]["weights"] == "none"
    assert "skipped" in plain and "disentanglement_curve" not in plain
    assert sum(result["identity_recovery"]["recovery_percent"].values()) == pytest.approx(100)
    assert result["settings"]["data"] == DEMO and result["settings"]["lpips"]["weights"] == "none"
    assert Image.open(out_dir / "disentanglement.png").size == (640, 420)
    lines = out.splitlines()
    assert lines[0] == "evaluated 2 models on 2 inputs, n = 3 samples each (seed 0):"
    assert lines[1].split()[:3] == ["model", "diversity", "per"]
    assert lines[3].startswith("toy ") and lines[4].startswith("plain ")
    assert lines[-2:] == [
        f"wrote {out_dir / 'metrics.json'}",
        f"wrote {out_dir / 'disentanglement.png'}",
    ]
    assert "evaluate toy: 2/2 inputs" in err  # progress lines when stderr is not a terminal


def test_synth_evaluate_errors(capsys, tmp_path, model_dirs):
    toy = str(model_dirs[0])

    def error(*argv: str, code: int = 1) -> str:
        got, out, err = _run(capsys, "evaluate", *argv)
        assert got == code, err
        assert out == ""
        return err

    err = error(toy, "--data", DEMO, "--metrics", "diversity,bogus", code=2)
    assert "--metrics bogus: unknown; choose among diversity, identity" in err
    err = error(toy, str(tmp_path / "nowhere"), "--data", DEMO)
    assert "nowhere: no such model directory" in err
    assert "give a number >= 1" in error(toy, "--data", DEMO, "--limit", "0", code=2)
    assert "one name per model" in error(toy, "--data", DEMO, "--name", "a", "--name", "b", code=2)
    # the default LPIPS trunk is a local ImageNet file: none here, and tests never download
    err = error(toy, "--data", DEMO, "--limit", "1", "-n", "2")
    assert "alexnet" in err and "--lpips-weights none" in err
    err = error(str(model_dirs[1]), "--data", DEMO, "--limit", "1", "-n", "2",
                "--metrics", "disentanglement", "--lpips-weights", "none")  # fmt: skip
    assert "per-scale codes" in err
    err = error(toy, "--data", '{"type": "demo", "size": 32, "num_classes": 5}')
    assert "num_classes = 5 but model 'toy' takes 4" in err
