"""core.lpips_diversity / core.identity_recovery / core.fid: each against an independent
computation on small inputs, their settings, the FID weights policy (offline, no download, no
unpickling), and the conformance kit."""

from __future__ import annotations

import hashlib
import pickle
import urllib.request
import warnings

import numpy as np
import pytest
import scipy.linalg
import torch
from safetensors.torch import load_file, save_file

import synth
from synth.io.weights import weights_dir
from synth.metrics import FID, FID_WEIGHTS_FILE, IdentityRecovery, LPIPSDiversity, frechet_distance
from synth.testing import check_part

from .fid_weights import random_fid_weights, random_inception, random_state_dict

SIZE = 32
K = 3


def _g(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _images(*shape: int, seed: int = 0) -> torch.Tensor:
    return torch.tanh(torch.randn(*shape, generator=_g(seed)))


def _sha256(path) -> str:
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


# --------------------------------------------------------------------------- LPIPS diversity


def _reference_lpips(metric: LPIPSDiversity):
    """The lpips package's own network with the metric's (random) trunk and linear layers."""
    import lpips

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = lpips.LPIPS(net="alex", pretrained=True, pnet_rand=True, verbose=False)
    ref.load_state_dict(metric.lpips.model.state_dict())
    return ref.eval()


@torch.no_grad()
def _hand_diversity(ref, samples: torch.Tensor, pairs=None) -> list[float]:
    """Per-input mean LPIPS over pairs, by a double loop calling lpips.LPIPS directly."""
    out = []
    for group in samples:
        n = group.shape[0]
        chosen = pairs or [(i, j) for i in range(n) for j in range(i + 1, n)]
        ds = [float(ref(group[i : i + 1], group[j : j + 1])) for i, j in chosen]
        out.append(sum(ds) / len(ds))
    return out


def test_lpips_diversity_matches_a_pairwise_loop():
    torch.manual_seed(0)
    metric = synth.build({"type": "core.lpips_diversity", "weights": "none"})
    ref = _reference_lpips(metric)
    a, b = _images(2, 4, 3, SIZE, SIZE, seed=1), _images(3, 4, 3, SIZE, SIZE, seed=2)
    metric.update(a)
    metric.update(b.flatten(0, 1), n=4)  # flat (b n) form
    per_input = _hand_diversity(ref, a) + _hand_diversity(ref, b)
    result = metric.compute()
    assert result["lpips_diversity"] == pytest.approx(np.mean(per_input), rel=1e-5)
    assert result["std"] == pytest.approx(np.std(per_input), rel=1e-4, abs=1e-7)
    assert result["num_inputs"] == 5
    assert result["settings"] == {
        "distance": "LPIPS (alex, random trunk)",
        "net": "alex",
        "weights": "none",
        "lpips_version": "0.1",
        "lpips_package": result["settings"]["lpips_package"],
        "resolution": [SIZE, SIZE],
        "n": 4,
        "pairs_per_input": 6,
    }
    torch.testing.assert_close(
        metric.per_input(a), torch.tensor(per_input[:2]), rtol=1e-5, atol=1e-7
    )


def test_lpips_diversity_is_one_batched_call_chunked_to_budget(monkeypatch):
    torch.manual_seed(0)
    metric = LPIPSDiversity(weights="none")
    calls: list[int] = []
    distance = metric.lpips.distance

    def counting(x, y):
        calls.append(x.shape[0])
        return distance(x, y)

    monkeypatch.setattr(metric.lpips, "distance", counting)
    x = _images(3, 4, 3, SIZE, SIZE, seed=3)
    full = metric.per_input(x)
    assert calls == [18]  # 3 inputs × 6 pairs in one call
    calls.clear()
    chunked = LPIPSDiversity(weights="none", pairs_per_batch=5)
    chunked.lpips.load_state_dict(metric.lpips.state_dict())
    monkeypatch.setattr(chunked.lpips, "distance", counting)
    torch.testing.assert_close(chunked.per_input(x), full, rtol=1e-5, atol=1e-7)
    assert calls == [5, 5, 5, 3]
    calls.clear()
    tiny_budget = LPIPSDiversity(weights="none", memory_budget_mb=96 * SIZE * SIZE * 4 * 4 / 2**20)
    tiny_budget.lpips.load_state_dict(metric.lpips.state_dict())
    monkeypatch.setattr(tiny_budget.lpips, "distance", counting)
    torch.testing.assert_close(tiny_budget.per_input(x), full, rtol=1e-5, atol=1e-7)
    assert calls == [4, 4, 4, 4, 2]


def test_lpips_diversity_max_pairs_takes_evenly_spaced_pairs():
    torch.manual_seed(0)
    metric = LPIPSDiversity(weights="none", max_pairs=4)
    ref = _reference_lpips(metric)
    x = _images(2, 5, 3, SIZE, SIZE, seed=4)
    triu = [(i, j) for i in range(5) for j in range(i + 1, 5)]  # 10 pairs
    chosen = [triu[k] for k in (0, 3, 6, 9)]
    assert metric.pair_indices(5).t().tolist() == [list(p) for p in chosen]
    metric.update(x)
    result = metric.compute()
    assert result["lpips_diversity"] == pytest.approx(
        np.mean(_hand_diversity(ref, x, chosen)), rel=1e-5
    )
    assert result["settings"]["pairs_per_input"] == 4


def test_lpips_diversity_errors_and_reset():
    metric = LPIPSDiversity(weights="none")
    with pytest.raises(ValueError, match="at least 2 samples"):
        metric.update(_images(2, 1, 3, SIZE, SIZE))
    with pytest.raises(ValueError, match="pass n="):
        metric.update(_images(4, 3, SIZE, SIZE))
    with pytest.raises(ValueError, match="groups of n=3"):
        metric.update(_images(4, 3, SIZE, SIZE), n=3)
    with pytest.raises(ValueError, match="nothing to compute"):
        metric.compute()
    metric.update(_images(1, 3, 3, SIZE, SIZE))
    with pytest.raises(ValueError, match="n=4 samples of size"):
        metric.update(_images(1, 4, 3, SIZE, SIZE))
    metric.reset()
    metric.update(_images(1, 4, 3, SIZE, SIZE))
    assert metric.compute()["settings"]["n"] == 4
    with pytest.raises(ValueError, match="NaN"):
        metric.update(torch.full((1, 2, 3, SIZE, SIZE), float("nan")))


def test_lpips_diversity_records_the_trunk_file(tmp_path):
    """An explicit trunk file: its path and SHA-256 are in the settings."""
    import torchvision

    torch.manual_seed(0)
    trunk = torchvision.models.alexnet(weights=None).features.state_dict()
    path = tmp_path / "alexnet-random.safetensors"
    save_file({f"features.{k}": v.contiguous() for k, v in trunk.items()}, str(path))
    metric = LPIPSDiversity(weights=str(path))
    torch.testing.assert_close(metric.lpips.model.net.slice1[0].weight, trunk["0.weight"])
    metric.update(_images(1, 2, 3, SIZE, SIZE))
    assert metric.compute()["settings"]["weights"] == {
        "file": str(path),
        "sha256": _sha256(path),
    }


# --------------------------------------------------------------------------- identity recovery


def test_identity_recovery_from_precomputed_distances():
    metric = IdentityRecovery(distance={"type": "core.l1"})
    a = torch.tensor([0.1, 0.5, 0.3, 0.2])
    b = torch.tensor([0.2, 0.4, 0.3, 0.6])
    c = torch.tensor([0.3, 0.6, 0.9, 0.2])
    for name, d in (("a", a), ("b", b), ("c", c)):
        metric.update(d[:2], name=name)
        metric.update(d[2:], name=name)
    result = metric.compute()
    # input 0: a; input 1: b; input 2: a and b tie; input 3: a and c tie
    assert result["recovery_count"] == pytest.approx({"a": 2.0, "b": 1.5, "c": 0.5})
    assert result["recovery_percent"] == pytest.approx({"a": 50.0, "b": 37.5, "c": 12.5})
    assert result["shortest_distance"] == pytest.approx(
        {"a": float(a.mean()), "b": float(b.mean()), "c": float(c.mean())}
    )
    assert result["num_inputs"] == 4
    settings = result["settings"]
    assert settings["n"] == 10
    assert settings["distance"] == {"type": "core.l1"}
    assert settings["weights"] is None  # the metric ran no LPIPS itself
    assert settings["sources"] == {"a": "given", "b": "given", "c": "given"}


def test_identity_recovery_errors():
    metric = IdentityRecovery(distance="core.l1")
    with pytest.raises(ValueError, match="nothing to compute"):
        metric.compute()
    metric.update(torch.rand(3), name="a")
    metric.update(torch.rand(2), name="b")
    with pytest.raises(ValueError, match=r"different numbers of inputs \{'a': 3, 'b': 2\}"):
        metric.compute()
    with pytest.raises(ValueError, match=r"one per input, \[B\]"):
        metric.update(torch.rand(3, 2), name="a")
    with pytest.raises(TypeError, match="SynthesisModel"):
        metric.update([0.1, 0.2], name="a")
    with pytest.raises(ValueError, match="NaN"):
        metric.update(torch.tensor([float("nan")]), name="a")
    out = synth.SynthesisOutput(image=torch.zeros(2, 3, 4, 4))
    with pytest.raises(ValueError, match="extras"):
        metric.update(out)


def _cond(b: int = 3, size: int = 16) -> synth.Condition:
    labels = torch.randint(0, K, (b, size, size), generator=_g(0))
    return synth.Condition(label_map=labels, num_classes=K)


def _model(seed: int) -> synth.SynthesisModel:
    torch.manual_seed(seed)
    gen = {
        "type": "core.simple_generator",
        "num_classes": K,
        "ngf": 4,
        "num_stages": 2,
        "z_dim": 4,
        "style_dim": 3,
        "norm": {"type": "core.adain"},
    }
    return synth.compose(
        {"generator": gen, "injector": {"type": "core.gaussian", "shared_styles": False}}
    )


@torch.no_grad()
def test_identity_recovery_runs_models_like_a_hand_computation():
    n, cond = 4, _cond(3)
    target = torch.rand(3, 3, 16, 16, generator=_g(9)) * 2 - 1
    models = {"m1": _model(1), "m2": _model(2)}
    metric = IdentityRecovery(n=n, distance={"type": "core.l1"}, batch_size=5)
    hand = {}
    for seed, (name, model) in enumerate(models.items()):
        metric.update(model, cond, target, name=name, generator=_g(seed))
        # by hand: the same n prior samples, L1 to the target, the closest per input
        images = model.sample(cond, n, sampler="core.prior", generator=_g(seed)).image
        d = (images - target.repeat_interleave(n, 0)).abs().flatten(1).mean(1)
        hand[name] = d.reshape(3, n).min(1).values
    result = metric.compute()
    for name in models:
        assert result["shortest_distance"][name] == pytest.approx(float(hand[name].mean()))
    wins = (hand["m1"] < hand["m2"]).double()
    ties = (hand["m1"] == hand["m2"]).double()
    assert result["recovery_count"]["m1"] == pytest.approx(float((wins + ties / 2).sum()))
    assert sum(result["recovery_count"].values()) == pytest.approx(3.0)
    assert result["settings"]["resolution"] == [16, 16]
    assert result["settings"]["sources"] == {"m1": "sampled", "m2": "sampled"}
    # a best-of-n output can be given directly
    other = IdentityRecovery(n=n, distance={"type": "core.l1"})
    out = models["m1"].sample(cond, n, sampler="core.best_of_n", generator=_g(0), target=target)
    other.update(out, name="m1")
    assert other.compute()["shortest_distance"]["m1"] == pytest.approx(
        result["shortest_distance"]["m1"]
    )
    with pytest.raises(ValueError, match="n=5"):
        IdentityRecovery(n=5, distance="core.l1").update(out)
    with pytest.raises(ValueError, match="pass its inputs and ground truth"):
        metric.update(models["m1"], cond)


@torch.no_grad()
def test_identity_recovery_with_lpips_records_weights_and_spec():
    metric = IdentityRecovery(n=2, distance={"type": "core.lpips", "weights": "none"})
    cond = _cond(2, size=SIZE)  # AlexNet's pooling needs at least ~32 px
    target = torch.rand(2, 3, SIZE, SIZE, generator=_g(3)) * 2 - 1
    metric.update(_model(1), cond, target, generator=_g(0))
    result = metric.compute()
    assert result["recovery_count"] == {"model": 2.0}
    settings = result["settings"]
    assert settings["weights"] == "none"
    assert settings["distance"] == {
        "type": "core.lpips",
        "weight": 1.0,
        "net": "alex",
        "weights": "none",
        "version": "0.1",
    }


# --------------------------------------------------------------------------- reset


def test_reset_forgets_declared_state_and_keeps_the_networks(monkeypatch):
    """reset() restores what add_state declared; no network is rebuilt (no __init__ again)."""
    diversity = LPIPSDiversity(weights="none")
    recovery = IdentityRecovery(n=2, distance={"type": "core.l1"})
    net, sampler = diversity.lpips, recovery.sampler()
    diversity.update(_images(2, 3, 3, SIZE, SIZE))
    recovery.update(torch.rand(3), name="a")
    recovery.update(torch.rand(3), name="b")

    def rebuilt(*args, **kwargs):
        raise AssertionError("reset() rebuilt the metric")

    monkeypatch.setattr(LPIPSDiversity, "__init__", rebuilt)
    monkeypatch.setattr(IdentityRecovery, "__init__", rebuilt)
    diversity.reset()
    recovery.reset()
    assert diversity.lpips is net and recovery.sampler() is sampler
    assert (diversity._means, diversity._n, diversity._size, diversity._pairs) == (
        [],
        None,
        None,
        None,
    )
    assert (recovery._dist, recovery._source, recovery._size) == ({}, {}, None)
    with pytest.raises(ValueError, match="nothing to compute"):
        diversity.compute()
    diversity.update(_images(1, 4, 3, SIZE, SIZE))  # another n after reset is fine
    assert diversity.compute()["settings"]["n"] == 4


class _Counts(synth.Metric):
    """Counts updates per key: its state is declared with add_state."""

    class Config(synth.PartConfig):
        keys: list[str] = ["a", "b"]

    def __init__(self, config=None, **kwargs):
        super().__init__(config, **kwargs)
        self.add_state("counts", {k: 0 for k in self.config.keys})
        self.add_state("seen", [])
        self.builds = getattr(self, "builds", 0) + 1

    def update(self, key: str) -> None:
        self.counts[key] += 1
        self.seen.append(key)

    def compute(self):
        return {**self.counts, "settings": {"keys": self.config.keys}}


class _Undeclared(synth.Metric):
    """A metric written before add_state: its state is set in __init__ only."""

    class Config(synth.PartConfig):
        pass

    def __init__(self, config=None, **kwargs):
        super().__init__(config, **kwargs)
        self.total = 0

    def update(self, x: float) -> None:
        self.total += x

    def compute(self):
        return {"total": self.total, "settings": {}}


def test_add_state_defaults_are_copied_and_reset_from_the_declaration():
    one, two = _Counts(), _Counts(keys=["a"])
    one.update("a")
    one.update("b")
    assert one.compute()["a"] == 1 and two.compute() == {"a": 0, "settings": {"keys": ["a"]}}
    one.reset()
    assert one.counts == {"a": 0, "b": 0} and one.seen == [] and one.builds == 1
    one.update("a")
    one.reset()  # the accumulated dict was a copy: the declared default is untouched
    assert one.counts == {"a": 0, "b": 0}


def test_undeclared_metric_reset_is_deprecated_but_still_resets():
    metric = _Undeclared()
    metric.name = "t.undeclared"
    metric.update(2.0)
    with pytest.warns(DeprecationWarning, match="declares no state.*add_state"):
        metric.reset()
    assert metric.total == 0 and metric.name == "t.undeclared"


# --------------------------------------------------------------------------- FID


@pytest.fixture(scope="module")
def fid_weights() -> str:
    return random_fid_weights()


@torch.no_grad()
def _hand_fid(weights: str, real: list[torch.Tensor], fake: list[torch.Tensor]) -> float:
    """Features from torch-fidelity's extractor, statistics with numpy, sqrtm with scipy."""
    net = random_inception(seed=123)
    net.load_state_dict(load_file(weights))
    net.features_list = ["64"]

    def feats(batches):
        x = torch.cat(batches).numpy()
        u8 = np.clip(np.round((x.astype(np.float64) + 1) * 127.5), 0, 255).astype(np.uint8)
        return net(torch.from_numpy(u8))[0].double().numpy()

    fr, ff = feats(real), feats(fake)
    mu1, mu2 = fr.mean(0), ff.mean(0)
    s1, s2 = np.cov(fr, rowvar=False), np.cov(ff, rowvar=False)
    covmean = scipy.linalg.sqrtm(s1 @ s2)
    return float(
        ((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean).real
    )


def test_fid_matches_numpy_scipy(fid_weights):
    real = [
        _images(4, 3, SIZE, SIZE, seed=1),
        torch.rand(4, 3, SIZE, SIZE, generator=_g(2)) * 2 - 1,
    ]
    fake = [_images(5, 3, SIZE, SIZE, seed=3) * 0.5 + 0.2]
    metric = synth.build({"type": "core.fid", "weights": fid_weights, "feature": 64})
    for x in real:
        metric.update(x, real=True)
    metric.update(fake[0], real=False)
    result = metric.compute()
    expected = _hand_fid(fid_weights, real, fake)
    assert expected > 1e-3  # the two sets differ
    assert result["fid"] == pytest.approx(expected, rel=1e-4)
    assert (result["num_real"], result["num_fake"]) == (8, 5)
    settings = result["settings"]
    assert settings["weights"] == fid_weights
    assert settings["sha256"] == _sha256(fid_weights)
    assert settings["feature"] == 64
    assert settings["resolution"] == [SIZE, SIZE]
    assert settings["inception_input"] == [299, 299]
    import torch_fidelity
    import torchmetrics

    assert settings["implementation"] == (
        f"torchmetrics {torchmetrics.__version__} / torch-fidelity {torch_fidelity.__version__}"
    )
    # the antialiased resize is another measurement, recorded as such
    aa = FID(weights=fid_weights, feature=64, antialias=True)
    for x in real:
        aa.update(x, real=True)
    aa.update(fake[0], real=False)
    other = aa.compute()
    assert other["fid"] != pytest.approx(result["fid"], rel=1e-6)
    assert "antialiased" in other["settings"]["resize"]


def test_frechet_distance_helper_matches_scipy():
    rng = np.random.default_rng(0)
    d = 16
    a, b = rng.normal(size=(d, 40)), rng.normal(size=(d, 40)) * 1.5 + 0.3
    s1, s2 = a @ a.T / 40, b @ b.T / 40
    mu1, mu2 = rng.normal(size=d), rng.normal(size=d)
    expected = (
        ((mu1 - mu2) ** 2).sum()
        + np.trace(s1)
        + np.trace(s2)
        - 2 * np.trace(scipy.linalg.sqrtm(s1 @ s2)).real
    )
    assert frechet_distance(mu1, s1, mu2, s2) == pytest.approx(expected, rel=1e-9)
    assert frechet_distance(torch.tensor(mu1), s1, mu1, s1) == pytest.approx(0.0, abs=1e-9)
    with pytest.raises(ValueError, match=r"covariances \[D, D\]"):
        frechet_distance(mu1, s1[:4], mu2, s2)


def test_fid_default_layer_and_reset_real_features(fid_weights):
    metric = FID(weights=fid_weights, reset_real_features=False)
    assert metric.config.feature == 2048
    assert metric._fid.inception.features_list == ["2048"]
    small = FID(weights=fid_weights, feature=64, reset_real_features=False)
    small.update(_images(3, 3, SIZE, SIZE, seed=1), real=True)
    small.update(_images(3, 3, 24, 40, seed=2), real=False)
    first = small.compute()
    assert first["settings"]["resolution"] == [[24, 40], [SIZE, SIZE]]
    inception = small._fid.inception
    small.reset()
    assert small._fid.inception is inception  # the network is kept
    with pytest.raises(ValueError, match="at least 2 real and 2 generated"):
        small.compute()
    small.update(_images(3, 3, 24, 40, seed=2), real=False)
    again = small.compute()  # real statistics kept
    assert again["num_real"] == 3 and again["fid"] == pytest.approx(first["fid"])
    with pytest.raises(ValueError, match=r"\[B, 3, H, W\]"):
        small.update(torch.zeros(2, 1, 8, 8), real=True)


@pytest.fixture
def no_network(monkeypatch):
    """Any download attempt fails the test; torch.load must be weights_only."""
    import torch_fidelity.feature_extractor_inceptionv3 as tfi

    def refuse(*args, **kwargs):
        raise AssertionError(f"network access attempted: {args[:1]}")

    monkeypatch.setattr(urllib.request, "urlopen", refuse)
    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", refuse)
    monkeypatch.setattr(torch.hub, "download_url_to_file", refuse)
    monkeypatch.setattr(tfi, "load_state_dict_from_url", refuse)
    loads: list[object] = []
    real_load = torch.load

    def checked_load(*args, **kwargs):
        loads.append(kwargs.get("weights_only"))
        if kwargs.get("weights_only") is not True:
            raise AssertionError(f"torch.load without weights_only=True: {kwargs}")
        return real_load(*args, **kwargs)

    monkeypatch.setattr(torch, "load", checked_load)
    return loads


@pytest.mark.parametrize("offline", ["1", "0"])
def test_fid_refuses_without_weights_and_never_downloads(no_network, monkeypatch, offline):
    monkeypatch.setenv("SYNTH_OFFLINE", offline)
    expected = str(weights_dir() / FID_WEIGHTS_FILE)
    with pytest.raises(synth.WeightsNotFoundError) as info:
        synth.build("core.fid")
    msg = str(info.value)
    assert FID_WEIGHTS_FILE in msg and repr(expected) in msg
    assert 'weights="/path/to/' in msg
    with pytest.raises(synth.WeightsNotFoundError, match="does not exist"):
        FID(weights="/nowhere/weights.pth")
    for bad in ("none", "random"):
        with pytest.raises(synth.ConfigError, match="meaningless"):
            FID(weights=bad)


def test_fid_uses_a_cached_pth_without_unpickling(no_network, fid_weights):
    """A .pth in $SYNTH_HOME/weights is found, read with weights_only=True, and used; nothing
    downloads (torch-fidelity's own loader is never reached)."""
    weights_dir().mkdir(parents=True)
    path = weights_dir() / FID_WEIGHTS_FILE
    torch.save(random_state_dict(), path)
    metric = FID(feature=64)
    assert no_network == [True]  # one torch.load, weights_only=True
    assert metric.weights_path == path
    reference = FID(weights=fid_weights, feature=64)
    x = _images(3, 3, SIZE, SIZE, seed=5)
    for m in (metric, reference):
        m.update(x, real=True)
        m.update(-x, real=False)
    a, b = metric.compute(), reference.compute()
    assert a["fid"] == b["fid"]
    assert a["settings"]["weights"] == str(path)
    assert a["settings"]["sha256"] == _sha256(path)


class _Payload:
    def __reduce__(self):
        return (print, ("pwned",))


def test_fid_refuses_files_that_unpickle_code_or_hold_other_weights(tmp_path):
    bad = tmp_path / "inception.pth"
    with open(bad, "wb") as f:
        pickle.dump({"x": _Payload()}, f)
    with pytest.raises(ValueError, match="refusing to load"):
        FID(weights=str(bad))
    other = tmp_path / "other.safetensors"
    save_file({"conv.weight": torch.zeros(2, 2)}, str(other))
    with pytest.raises(ValueError, match=f"does not hold torch-fidelity's FID.*{FID_WEIGHTS_FILE}"):
        FID(weights=str(other))


# --------------------------------------------------------------------------- conformance


def test_conformance_kit(fid_weights):
    for name, params in (
        ("core.lpips_diversity", {"weights": "none"}),
        ("core.identity_recovery", {}),
        ("core.fid", {"weights": fid_weights, "feature": 64}),
    ):
        report = check_part(name, **params)
        assert report.passed, str(report)
        assert report.status("forward") == report.status("determinism") == "passed"


def test_metrics_are_registered():
    assert set(synth.list_parts(kind="metric")) >= {
        "core.lpips_diversity",
        "core.identity_recovery",
        "core.fid",
    }


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_metrics_follow_the_device_of_their_inputs(fid_weights):
    torch.manual_seed(0)
    cpu = LPIPSDiversity(weights="none")
    gpu = LPIPSDiversity(weights="none")
    gpu.lpips.load_state_dict(cpu.lpips.state_dict())
    x = _images(2, 3, 3, SIZE, SIZE, seed=1)
    torch.testing.assert_close(
        gpu.per_input(x.cuda()).cpu(), cpu.per_input(x), rtol=1e-3, atol=1e-5
    )
    fid = FID(weights=fid_weights, feature=64)
    fid.update(x[0].cuda(), real=True)
    fid.update(x[1].cuda(), real=False)
    ref = FID(weights=fid_weights, feature=64)
    ref.update(x[0], real=True)
    ref.update(x[1], real=False)
    assert fid.compute()["fid"] == pytest.approx(ref.compute()["fid"], rel=1e-2, abs=1e-4)
