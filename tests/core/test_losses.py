"""Core losses against independent hand computations on small tensors."""

import pytest
import torch
from torch.distributions import Normal, kl_divergence

import synth
from synth import Condition, DiscriminatorOutput, Latents, LossInputs, SynthesisOutput
from synth.parts.losses import KL, L1, LPIPS, LSGAN, Hinge, NonSaturating, Perceptual, gaussian_kl


def cond(b=2, size=32):
    return Condition(label_map=torch.zeros(b, size, size, dtype=torch.long), num_classes=3)


def images(b=2, size=32, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(b, 3, size, size, generator=g) * 2 - 1


def logits(seed):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(2, 1, 4, 4, generator=g), torch.randn(2, 1, 2, 3, generator=g)]


def gan_batch(phase):
    real, fake = logits(1), logits(2)
    return (
        LossInputs(
            phase=phase,
            cond=cond(),
            disc_real=DiscriminatorOutput(logits=real),
            disc_fake=DiscriminatorOutput(logits=fake),
        ),
        real,
        fake,
    )


def image_batch(fake, real):
    return LossInputs(
        phase="generator", cond=cond(fake.shape[0]), real=real, fake=SynthesisOutput(image=fake)
    )


def mean_of(values):
    return sum(values) / len(values)


# ----------------------------------------------------------------------------- adversarial


def _hand(kind, phase, real, fake):
    """Elementwise reference formulas with explicit Python means (no loss code shared)."""
    import math

    def m(t, f):
        vals = [f(v) for v in t.flatten().tolist()]
        return sum(vals) / len(vals)

    softplus = lambda v: math.log1p(math.exp(v))  # noqa: E731
    terms = []
    for r, f in zip(real, fake):
        if kind == "hinge":
            t = (
                -m(f, lambda v: v)
                if phase == "generator"
                else (m(r, lambda v: max(0.0, 1 - v)) + m(f, lambda v: max(0.0, 1 + v)))
            )
        elif kind == "lsgan":
            t = (
                m(f, lambda v: (v - 1) ** 2)
                if phase == "generator"
                else (m(r, lambda v: (v - 1) ** 2) + m(f, lambda v: v**2))
            )
        else:
            t = (
                m(f, lambda v: softplus(-v))
                if phase == "generator"
                else (m(r, lambda v: softplus(-v)) + m(f, lambda v: softplus(v)))
            )
        terms.append(t)
    return terms


@pytest.mark.parametrize(
    "cls,kind,d_scale", [(Hinge, "hinge", 1.0), (LSGAN, "lsgan", 0.5), (NonSaturating, "ns", 1.0)]
)
@pytest.mark.parametrize("phase", ["generator", "discriminator"])
def test_gan_losses_match_hand_formulas(cls, kind, d_scale, phase):
    batch, real, fake = gan_batch(phase)
    terms = _hand(kind, phase, real, fake)
    scale = d_scale if phase == "discriminator" else 1.0
    loss = cls()
    assert loss.config.d_scale == d_scale
    assert loss.roles == {"generator", "discriminator"}
    assert loss.needs == {"disc_logits"}
    torch.testing.assert_close(loss(batch), torch.tensor(sum(terms) * scale))
    mean = cls(reduce_scales="mean")(batch)
    torch.testing.assert_close(mean, torch.tensor(mean_of(terms) * scale))
    torch.testing.assert_close(
        cls(d_scale=2.0)(batch),
        torch.tensor(sum(terms) * (2.0 if phase == "discriminator" else 1.0)),
    )


def test_gan_loss_gradient_reaches_fake_logits():
    f = [torch.randn(2, 1, 4, 4, requires_grad=True)]
    batch = LossInputs(phase="generator", cond=cond(), disc_fake=DiscriminatorOutput(logits=f))
    Hinge()(batch).backward()
    torch.testing.assert_close(f[0].grad, torch.full_like(f[0], -1 / 32))


def test_gan_loss_errors():
    batch = LossInputs(phase="generator", cond=cond())
    with pytest.raises(ValueError, match="disc_fake"):
        Hinge()(batch)
    batch = LossInputs(
        phase="discriminator", cond=cond(), disc_fake=DiscriminatorOutput(logits=logits(0))
    )
    with pytest.raises(ValueError, match="disc_real"):
        LSGAN()(batch)
    batch, _, _ = gan_batch("encoder")
    with pytest.raises(ValueError, match="encoder"):
        NonSaturating()(batch)
    batch, _, _ = gan_batch("discriminator")
    batch.disc_real.logits = batch.disc_real.logits[:1]
    with pytest.raises(ValueError, match="1 scales"):
        Hinge()(batch)


def test_registered_names_build():
    loss = synth.build({"type": "core.lsgan", "weight": 2.0})
    assert isinstance(loss, LSGAN) and loss.weight == 2.0
    assert isinstance(synth.build("core.hinge"), Hinge)
    assert isinstance(synth.build("core.nonsaturating"), NonSaturating)
    assert isinstance(synth.build("core.l1"), L1)
    assert isinstance(synth.build("core.kl"), KL)


# ----------------------------------------------------------------------------- L1, KL


def test_l1_forward_and_distance():
    x, y = images(seed=0), images(seed=1)
    loss = L1()
    torch.testing.assert_close(loss(image_batch(x, y)), (x - y).abs().mean())
    per = torch.stack([(x[i] - y[i]).abs().sum() / x[i].numel() for i in range(2)])
    torch.testing.assert_close(loss.distance(x, y), per)
    assert torch.equal(loss.distance(x, x), torch.zeros(2))
    with pytest.raises(ValueError, match="real"):
        loss(LossInputs(phase="generator", cond=cond(), fake=SynthesisOutput(image=x)))


@pytest.mark.parametrize("reduction", ["sum", "batchmean", "mean"])
def test_gaussian_kl_matches_torch_distributions(reduction):
    g = torch.Generator().manual_seed(0)
    mu, logvar = torch.randn(3, 8, generator=g), torch.randn(3, 8, generator=g)
    ref = kl_divergence(Normal(mu, (0.5 * logvar).exp()), Normal(0.0, 1.0))
    expected = {"sum": ref.sum(), "batchmean": ref.sum() / 3, "mean": ref.mean()}[reduction]
    torch.testing.assert_close(gaussian_kl(mu, logvar, reduction), expected)
    with pytest.raises(ValueError, match="reduction"):
        gaussian_kl(mu, logvar, "none")


def test_kl_loss_reads_the_posterior_term():
    kl = torch.tensor(1.25)
    loss = KL()
    assert loss.roles == {"encoder"} and loss.needs == {"kl"}
    batch = LossInputs(phase="encoder", cond=cond(), latents=Latents(kl=kl))
    assert loss(batch) is kl
    with pytest.raises(ValueError, match="posterior"):
        loss(LossInputs(phase="encoder", cond=cond(), latents=Latents(z=torch.zeros(2, 4))))


# ----------------------------------------------------------------------------- perceptual

LAYERS = ["relu1_1", "relu2_1", "relu3_1"]  # vgg11 features indices 1, 4, 7
WEIGHTS = [0.25, 0.5, 2.0]


def perceptual(**kw):
    torch.manual_seed(0)
    kw = {"backbone": "vgg11", "layers": LAYERS, "layer_weights": WEIGHTS, "weights": "none", **kw}
    return Perceptual(**kw)


def _hand_perceptual(loss, x, y, criterion):
    """Independent: torchvision's VGG11 stack with the same weights, sliced by hand."""
    from torchvision.models.vgg import cfgs, make_layers

    net = make_layers(cfgs["A"])[:8]
    net.load_state_dict(loss.extractor.features.state_dict())

    def feats(t):
        out, h = [], t
        for i, m in enumerate(net):
            h = m(h)
            if i in (1, 4, 7):
                out.append(h)
        return out

    per_sample = torch.zeros(x.shape[0])
    for w, a, b in zip(WEIGHTS, feats(x), feats(y)):
        d = (a - b).abs() if criterion == "l1" else (a - b) ** 2
        per_sample += w * d.reshape(x.shape[0], -1).mean(1)
    total = sum(
        w * ((a - b).abs() if criterion == "l1" else (a - b) ** 2).mean()
        for w, a, b in zip(WEIGHTS, feats(x), feats(y))
    )
    return total, per_sample


@pytest.mark.parametrize("criterion", ["l1", "l2"])
def test_perceptual_weighted_sum_matches_hand_loop(criterion):
    loss = perceptual(criterion=criterion)
    x, y = images(seed=0), images(seed=1)
    total, per_sample = _hand_perceptual(loss, x, y, criterion)
    torch.testing.assert_close(loss(image_batch(x, y)), total)
    torch.testing.assert_close(loss.distance(x, y), per_sample)
    torch.testing.assert_close(loss.distance(x, x), torch.zeros(2))


def test_perceptual_closest_of_n_samples_is_the_min_over_each_inputs_samples():
    """``samples: closest`` (best of many): per input the smallest of its N samples' distances,
    averaged; the gradient reaches only the closest sample. With one sample per input, or
    ``samples: all``, the usual mean."""
    b, n = 2, 3
    fake = images(b * n, seed=0).requires_grad_()
    real = images(b, seed=1).repeat_interleave(n, 0)  # what core.gan passes
    batch = LossInputs(
        phase="generator",
        cond=cond(b * n),
        real=real,
        fake=SynthesisOutput(image=fake),
        samples=fake.reshape(b, n, 3, 32, 32),
    )
    closest, every = perceptual(samples="closest"), perceptual()
    _, per_sample = _hand_perceptual(closest, fake.detach(), real, "l1")
    expected = per_sample.reshape(b, n).min(1).values.mean()
    torch.testing.assert_close(closest(batch), expected)
    torch.testing.assert_close(every(batch), per_sample.mean())
    closest(batch).backward()
    nearest = per_sample.reshape(b, n).argmin(1) + torch.arange(b) * n
    touched = fake.grad.flatten(1).abs().sum(1) > 0
    assert touched.nonzero().flatten().tolist() == nearest.tolist()
    one = image_batch(fake.detach()[:b], real[:b])  # no samples: the mean
    torch.testing.assert_close(closest(one), every(one))


def test_l1_closest_of_n_samples_is_the_min_over_each_inputs_samples():
    b, n = 2, 3
    fake = images(b * n, seed=0).requires_grad_()
    real = images(b, seed=1).repeat_interleave(n, 0)
    batch = LossInputs(
        phase="generator",
        cond=cond(b * n),
        real=real,
        fake=SynthesisOutput(image=fake),
        samples=fake.reshape(b, n, 3, 32, 32),
    )
    per_sample = (fake.detach() - real).abs().reshape(b * n, -1).mean(1)
    closest = L1(samples="closest")
    torch.testing.assert_close(closest(batch), per_sample.reshape(b, n).min(1).values.mean())
    torch.testing.assert_close(L1()(batch), per_sample.mean())
    closest(batch).backward()
    nearest = per_sample.reshape(b, n).argmin(1) + torch.arange(b) * n
    touched = fake.grad.flatten(1).abs().sum(1) > 0
    assert touched.nonzero().flatten().tolist() == nearest.tolist()
    # reals that are not each input's repeats: the plain mean
    other = LossInputs(
        phase="generator",
        cond=cond(b * n),
        real=images(b * n, seed=2),
        fake=SynthesisOutput(image=fake.detach()),
        samples=fake.detach().reshape(b, n, 3, 32, 32),
    )
    torch.testing.assert_close(closest(other), L1()(other))


def test_perceptual_defaults_are_pix2pixhd():
    c = Perceptual.Config()
    assert c.backbone == "vgg19"
    assert c.layers == ["relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1"]
    assert c.layer_weights == [1 / 32, 1 / 16, 1 / 8, 1 / 4, 1.0]
    assert (c.criterion, c.normalize, c.weights) == ("l1", "none", "imagenet")
    assert Perceptual.state_in_checkpoint is False


def test_perceptual_gradients_and_frozen_backbone():
    loss = perceptual()
    fake = images(seed=0).requires_grad_()
    real = images(seed=1).requires_grad_()
    loss(image_batch(fake, real)).backward()
    assert fake.grad is not None and fake.grad.abs().sum() > 0
    assert real.grad is None  # detach_target
    assert not any(p.requires_grad for p in loss.parameters())
    loss.train()
    assert not loss.extractor.training


def test_perceptual_config_and_weights_errors(tmp_path):
    with pytest.raises(synth.ConfigError, match="one weight per layer"):
        Perceptual(layers=["relu1_1"], weights="none")
    with pytest.raises(synth.WeightsNotFoundError) as info:
        Perceptual(layers=["relu1_1"], layer_weights=[1.0])  # weights="imagenet", offline
    assert str(tmp_path / "synth_home" / "weights" / "vgg19.tv_in1k.safetensors") in str(info.value)


# ----------------------------------------------------------------------------- LPIPS


def test_lpips_random_trunk_runs_and_is_zero_on_identical_images():
    torch.manual_seed(0)
    loss = LPIPS(weights="none")
    x, y = images(seed=0), images(seed=1)
    d = loss.distance(x, y)
    assert d.shape == (2,) and (d > 0).all()
    assert torch.equal(loss.distance(x, x), torch.zeros(2))
    torch.testing.assert_close(loss(image_batch(x, y)), d.mean())
    assert not any(p.requires_grad for p in loss.parameters())
    loss.train()
    assert not loss.model.training
    assert LPIPS.state_in_checkpoint is False


def test_lpips_matches_the_lpips_package_with_the_same_trunk(tmp_path):
    import lpips

    torch.manual_seed(0)
    ref = lpips.LPIPS(net="alex", version="0.1", pretrained=True, pnet_rand=True, verbose=False)
    # the trunk as torchvision's file layout: features.N.*
    trunk = {
        k.split(".", 1)[1]: v for k, v in ref.net.state_dict().items()
    }  # "N.weight" after dropping "sliceK."
    torch.save({f"features.{k}": v for k, v in trunk.items()}, tmp_path / "alexnet.pth")
    ours = LPIPS(weights=str(tmp_path / "alexnet.pth"))
    x, y = images(seed=0), images(seed=1)
    torch.testing.assert_close(ours.distance(x, y), ref(x, y).flatten())


def test_lpips_offline_error_names_the_file(tmp_path):
    with pytest.raises(synth.WeightsNotFoundError) as info:
        LPIPS()
    assert str(tmp_path / "synth_home" / "weights" / "alexnet-owt-7be5be79.pth") in str(info.value)


def test_lpips_failed_download_says_which_file_to_place(monkeypatch, tmp_path):
    def no_network(*args, **kwargs):
        raise OSError("no network")

    monkeypatch.setenv("SYNTH_OFFLINE", "0")
    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", no_network)
    with pytest.raises(synth.WeightsNotFoundError, match="no network") as info:
        LPIPS(net="squeeze")
    assert str(tmp_path / "synth_home" / "weights" / "squeezenet1_1-b8a52dc0.pth") in str(
        info.value
    )


@pytest.mark.parametrize("weighting", ["pix2pixhd", "spade"])
def test_feature_matching_weights_by_hand(weighting):
    from synth.parts.losses import FeatureMatching

    g = torch.Generator().manual_seed(0)
    # two scales with 4 and 3 feature maps
    real = [[torch.randn(2, 3, 4, 4, generator=g) for _ in range(n)] for n in (4, 3)]
    fake = [[torch.randn(2, 3, 4, 4, generator=g) for _ in range(n)] for n in (4, 3)]
    batch = LossInputs(
        "generator",
        cond(),
        disc_real=DiscriminatorOutput([torch.zeros(1)] * 2, real),
        disc_fake=DiscriminatorOutput([torch.zeros(1)] * 2, fake),
    )
    want = 0.0
    for fs, rs in zip(fake, real):
        layer_w = 4.0 / len(fs) if weighting == "pix2pixhd" else 1.0
        for f, r in zip(fs, rs):
            want += layer_w * 0.5 * float((f - r).abs().mean())
    got = FeatureMatching(weighting=weighting)(batch)
    assert float(got) == pytest.approx(want, rel=1e-6)
