"""core.prior / core.interpolate / core.best_of_n: ordering, chunking, formulas, errors; a
sampler's keywords checked from its signature (core and third-party samplers)."""

from __future__ import annotations

import math

import pytest
import torch
from einops import rearrange

import synth
import synth.testing
from synth.parts.samplers import BestOfN, Interpolate, Prior
from synth.registry import discover

K = 3


def _cond(b: int = 2, size: int = 16) -> synth.Condition:
    labels = torch.randint(0, K, (b, size, size), generator=torch.Generator().manual_seed(0))
    return synth.Condition(label_map=labels, num_classes=K)


def _model(registry: synth.Registry | None = None, **gen) -> synth.SynthesisModel:
    torch.manual_seed(0)
    spec = {
        "type": "core.simple_generator",
        "num_classes": K,
        "ngf": 4,
        "num_stages": 2,
        "z_dim": 4,
        "style_dim": 3,
        "norm": {"type": "core.adain"},
        **gen,
    }
    return synth.compose(
        {"generator": spec, "injector": {"type": "core.gaussian", "shared_styles": False}},
        registry=registry,
    )


def _seed(s: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(s)


# --------------------------------------------------------------------------- prior


@torch.no_grad()
def test_prior_order_is_b_n_and_latents_remake_images():
    model, cond = _model(), _cond(2)
    out = model.sample(cond, 3, generator=_seed())
    assert out.image.shape == (6, 3, 16, 16)
    assert out.latents.z.shape == (6, 4)
    # the codes are the injector's prior on cond.repeat_interleave(n)
    cond_n = cond.repeat_interleave(3)
    expected = model.injector.prior(cond_n, _seed())
    torch.testing.assert_close(out.latents.z, expected.z)
    # row i is input i // n: regenerate each row from its own condition and code
    for i in (0, 2, 3, 5):
        one = model.generator(cond[i // 3], out.latents[i]).image
        torch.testing.assert_close(one[0], out.image[i], atol=1e-5, rtol=1e-5)
    grouped = rearrange(out.image, "(b n) c h w -> b n c h w", n=3)
    assert not torch.allclose(grouped[0, 0], grouped[0, 1])


@torch.no_grad()
def test_prior_chunking_and_seeding():
    model, cond = _model(), _cond(3)
    full = model.sample(cond, 4, generator=_seed(1))
    chunked = model.sample(
        cond, 4, sampler={"type": "core.prior", "batch_size": 5}, generator=_seed(1)
    )
    assert isinstance(model.sampler, Prior)
    torch.testing.assert_close(chunked.image, full.image, atol=1e-5, rtol=1e-5)
    other = model.sample(cond, 4, generator=_seed(2))
    assert not torch.allclose(other.image, full.image)


@torch.no_grad()
def test_prior_without_injector_repeats():
    model = synth.compose(
        {"generator": {"type": "core.simple_generator", "num_classes": K, "ngf": 4}}
    )
    out = model.sample(_cond(2), 3)
    assert out.latents is None and out.image.shape == (6, 3, 16, 16)
    torch.testing.assert_close(out.image[0], out.image[2])
    with pytest.raises(TypeError, match="unexpected argument"):
        model.sample(_cond(2), 3, target=None)


# --------------------------------------------------------------------------- interpolate


def _hand_slerp(a: torch.Tensor, b: torch.Tensor, t: float) -> torch.Tensor:
    """Shoemake's formula on one pair of flat vectors."""
    a64, b64 = a.double().flatten(), b.double().flatten()
    cos = torch.dot(a64, b64) / (a64.norm() * b64.norm())
    omega = math.acos(float(cos))
    out = (math.sin((1 - t) * omega) * a64 + math.sin(t * omega) * b64) / math.sin(omega)
    return out.reshape(a.shape).float()


@torch.no_grad()
def test_interpolate_slerp_endpoints_and_formula():
    model, cond = _model(), _cond(2)
    start = model.injector.prior(cond, _seed(1))
    end = model.injector.prior(cond, _seed(2))
    n = 5
    out = model.sample(cond, n, sampler="core.interpolate", start=start, end=end)
    assert out.image.shape == (2 * n, 3, 16, 16)
    z = rearrange(out.latents.z, "(b n) d -> b n d", n=n)
    for b in range(2):
        torch.testing.assert_close(z[b, 0], start.z[b])
        torch.testing.assert_close(z[b, -1], end.z[b], atol=1e-5, rtol=1e-5)
        for j, t in enumerate(torch.linspace(0, 1, n).tolist()):
            torch.testing.assert_close(z[b, j], _hand_slerp(start.z[b], end.z[b], t))
            s = out.latents.styles[1][b * n + j]
            torch.testing.assert_close(s, _hand_slerp(start.styles[1][b], end.styles[1][b], t))
    # endpoint images are the generator's images of the endpoint codes
    first = model.generate(cond, start).image
    last = model.generate(cond, end).image
    torch.testing.assert_close(out.image[0::n], first, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(out.image[n - 1 :: n], last, atol=1e-4, rtol=1e-4)


@torch.no_grad()
def test_interpolate_lerp_spatial_and_default_endpoints():
    torch.manual_seed(0)
    model = synth.compose(
        {
            "generator": {
                "type": "core.simple_generator",
                "num_classes": K,
                "ngf": 4,
                "num_stages": 2,
                "noise_channels": 2,
            },
            "injector": "core.spatial_noise",
            "sampler": {"type": "core.interpolate", "mode": "lerp", "batch_size": 3},
        }
    )
    cond = _cond(2)
    out = model.sample(cond, 4, generator=_seed(3))
    g = _seed(3)
    start = model.injector.prior(cond, g)
    end = model.injector.prior(cond, g)
    sp = rearrange(out.latents.spatial, "(b n) c h w -> b n c h w", n=4)
    for j, t in enumerate([0, 1 / 3, 2 / 3, 1]):
        torch.testing.assert_close(sp[:, j], (1 - t) * start.spatial + t * end.spatial)
    assert out.image.shape == (8, 3, 16, 16)


def test_interpolate_errors():
    model = synth.compose(
        {"generator": {"type": "core.simple_generator", "num_classes": K, "ngf": 4}}
    )
    with pytest.raises(synth.CapabilityError, match="start=synth.Latents"):
        model.sample(_cond(), 3, sampler="core.interpolate")
    model = _model()
    lat = model.injector.prior(_cond(3))
    with pytest.raises(ValueError, match="batch size"):
        model.sample(_cond(2), 3, sampler=Interpolate(), start=lat, end=lat)


# --------------------------------------------------------------------------- best of n


class _SquaredDistance(synth.Loss):
    """Mean squared difference per sample (a stand-in image distance)."""

    def forward(self, batch):
        return (batch.fake.image - batch.real).square().mean()

    def distance(self, x, y):
        return (x - y).square().flatten(1).mean(1)


class _Scaled(synth.Sampler):
    """Prior samples times ``gain`` plus ``shift``: a third-party sampler's own typed keywords,
    one required, with no code to check them."""

    def sample(
        self,
        model: synth.SynthesisModel,
        cond: synth.Condition,
        n: int,
        *,
        generator: torch.Generator | None = None,
        gain: float,
        shift: float = 0.0,
    ) -> synth.SynthesisOutput:
        out = Prior()(model, cond, n, generator=generator)
        out.image = out.image * gain + shift
        return out


class _Loose(synth.Sampler):
    """The pattern the contract forbids: keywords parsed by hand from ``**kwargs``."""

    def sample(self, model, cond, n, *, generator=None, **kwargs):
        return Prior()(model, cond, n, generator=generator)


@pytest.fixture
def registry() -> synth.Registry:
    reg = synth.Registry()
    discover(reg, entry_points=False)
    reg.add("test.sq", kind="loss", target=_SquaredDistance)
    reg.add("test.scaled", kind="sampler", target=_Scaled)
    reg.add("test.loose", kind="sampler", target=_Loose)
    return reg


@torch.no_grad()
def test_best_of_n_picks_the_argmin(registry):
    model, cond = _model(registry), _cond(2)
    n = 5
    samples = model.sample(cond, n, generator=_seed(4))
    pick = torch.tensor([3, 1])
    target = samples.image[torch.arange(2) * n + pick]
    sampler = {"type": "core.best_of_n", "distance": "test.sq", "batch_size": 4}
    best = model.sample(cond, n, sampler=sampler, generator=_seed(4), target=target)
    assert best.image.shape == (2, 3, 16, 16)
    assert torch.equal(best.extras["index"], pick)
    torch.testing.assert_close(best.image, target)
    torch.testing.assert_close(best.extras["distance"], torch.zeros(2))
    # all distances against an independent computation; the winner is their argmin
    hand = (samples.image - target.repeat_interleave(n, 0)).square().flatten(1).mean(1)
    torch.testing.assert_close(best.extras["distances"], hand.view(2, n))
    assert torch.equal(best.extras["distances"].argmin(1), best.extras["index"])
    torch.testing.assert_close(best.latents.z, samples.latents.z[torch.arange(2) * n + pick])


@torch.no_grad()
def test_best_of_n_noisy_target(registry):
    model, cond = _model(registry), _cond(2)
    sampler = BestOfN(distance="test.sq")
    target = torch.rand(2, 3, 16, 16, generator=_seed(9)) * 2 - 1
    out = sampler.sample(model, cond, 4, generator=_seed(5), target=target)
    d = out.extras["distances"]
    assert d.shape == (2, 4)
    torch.testing.assert_close(out.extras["distance"], d.min(1).values)
    samples = model.sample(cond, 4, generator=_seed(5)).image
    torch.testing.assert_close(out.image, samples[torch.arange(2) * 4 + d.argmin(1)])


def test_best_of_n_errors(registry):
    model, cond = _model(registry), _cond(2)
    sampler = BestOfN(distance="test.sq")
    with pytest.raises(ValueError, match="target=images"):
        sampler.sample(model, cond, 3)
    with pytest.raises(ValueError, match="one target image per input"):
        sampler.sample(model, cond, 3, target=torch.zeros(3, 3, 16, 16))
    with pytest.raises(ValueError, match="output size"):
        sampler.sample(model, cond, 3, target=torch.zeros(2, 3, 8, 8))
    with pytest.raises(TypeError, match="not a loss"):
        BestOfN(distance="core.prior").sample(model, cond, 3, target=torch.zeros(2, 3, 16, 16))


@torch.no_grad()
def test_best_of_n_with_core_l1():
    pytest.importorskip("synth.parts.losses")
    model, cond = _model(), _cond(2)
    samples = model.sample(cond, 4, generator=_seed(6))
    target = samples.image[[2, 5]]
    out = model.sample(cond, 4, sampler="core.best_of_n", generator=_seed(6), target=target)
    assert out.extras["index"].tolist() == [2, 1]
    hand = (samples.image - target.repeat_interleave(4, 0)).abs().flatten(1).mean(1)
    torch.testing.assert_close(out.extras["distances"], hand.view(2, 4))


# --------------------------------------------------------------------------- keywords


def test_wrong_keyword_names_the_sampler_and_what_it_takes(registry):
    model, cond = _model(registry), _cond(2)
    spec = {"type": "core.best_of_n", "distance": "test.sq"}
    with pytest.raises(TypeError) as err:
        model.sample(cond, 2, sampler=spec, targt=torch.zeros(2, 3, 16, 16))
    msg = str(err.value)
    assert "sampler core.best_of_n got unexpected argument(s) 'targt'" in msg
    assert "(did you mean 'target'?)" in msg
    assert "BestOfN.sample(model, cond, n, *, generator=None, target: Tensor | None = None)" in msg
    # calling a sampler directly checks the same way (unregistered: named by its class)
    with pytest.raises(TypeError, match=r"sampler BestOfN got unexpected argument\(s\) 'targt'"):
        BestOfN(distance="test.sq")(model, cond, 2, targt=None)
    # a sampler with no keywords of its own says so
    with pytest.raises(TypeError, match=r"'start'.*Prior.sample\(.*\): no own keywords"):
        model.sample(cond, 2, start=None)


def test_core_samplers_declare_typed_keywords():
    assert Prior.keywords() == {}
    interp = Interpolate.keywords()
    assert list(interp) == ["start", "end"]
    assert all(p.kind is p.KEYWORD_ONLY and p.default is None for p in interp.values())
    assert interp["start"].annotation == "Latents | None"
    assert BestOfN.keywords()["target"].annotation == "Tensor | None"


@torch.no_grad()
def test_third_party_keywords_are_checked_from_the_signature(registry):
    """A sampler that only declares its keywords gets the binding and the messages."""
    model, cond = _model(registry), _cond(2)
    prior = model.sample(cond, 2, generator=_seed(7)).image
    out = model.sample(cond, 2, sampler="test.scaled", generator=_seed(7), gain=0.5, shift=1.0)
    torch.testing.assert_close(out.image, prior * 0.5 + 1.0)
    out = registry.build("test.scaled")(model, cond, 2, generator=_seed(7), gain=2.0)
    torch.testing.assert_close(out.image, prior * 2.0)
    takes = "gain: float (required), shift: float = 0.0"
    with pytest.raises(TypeError) as err:
        model.sample(cond, 2, sampler="test.scaled", gian=2.0)
    msg = str(err.value)
    assert "sampler test.scaled got unexpected argument(s) 'gian' (did you mean 'gain'?)" in msg
    assert "is missing required argument(s) 'gain'" in msg and takes in msg
    with pytest.raises(TypeError, match=r"missing required argument\(s\) 'gain'"):
        model.sample(cond, 2, sampler="test.scaled", shift=1.0)
    report = synth.testing.check_part(
        "test.scaled", registry=registry, example_inputs={"kwargs": {"gain": 0.5}}
    )
    assert report.status("forward") == "passed"


def test_conformance_flags_keywords_parsed_by_hand(registry):
    report = synth.testing.check_part("test.loose", registry=registry, raise_on_failure=False)
    assert report.status("forward") == "failed"
    assert "**kwargs" in str(report) and "checked from the signature" in str(report)
