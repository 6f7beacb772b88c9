"""The nested-scale losses against independent computations: NDiv (eqs. 5-6) as the reference's
loop over sample pairs, the disentanglement loss (eq. 1) with 2×2 pooling by reshaping."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from einops import rearrange

import synth
import synth.testing
from synth_nested_scale import Disentangle, NDiv, ndiv

# --------------------------------------------------------------------------- references


def ndiv_loop(z: torch.Tensor, y: torch.Tensor, alpha: float = 0.8) -> torch.Tensor:
    """NDiv as written in eq. 5-6 and the reference: a loop over inputs and sample pairs.

    Distances ``d_ij = ||x_i - x_j||``, rows divided by ``Σ_j d_ij + 1e-12`` (detached),
    ``Σ_ij relu(α·Dz_ij − Dy_ij) / (N·(N−1))`` per input.
    """
    b, n = z.shape[:2]

    def normalised(x):
        d = [[torch.norm(x[i] - x[j], p=2) for j in range(n)] for i in range(n)]
        rows = [(sum(r) + 1e-12).detach() for r in d]
        return [[d[i][j] / rows[i] for j in range(n)] for i in range(n)]

    out = []
    for s in range(b):
        dz, dy = normalised(z[s]), normalised(y[s])
        total = sum(torch.relu(alpha * dz[i][j] - dy[i][j]) for i in range(n) for j in range(n))
        out.append(total / (n * (n - 1)))
    return torch.stack(out)


def avg_pool_2x2(x: torch.Tensor) -> torch.Tensor:
    """S of eq. 1: 2×2 average pooling, stride 2, by reshaping (not avg_pool2d)."""
    return rearrange(x, "b c (h p) (w q) -> b c h w (p q)", p=2, q=2).mean(-1)


def squared_distance(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Pixel Euclidean distance as a per-element mean of squares."""
    return ((a - b) ** 2).sum() / a.numel()


# --------------------------------------------------------------------------- the pure ndiv


@pytest.mark.parametrize("n", [2, 4, 5])
def test_ndiv_matches_the_reference_loop_values_and_gradients(n):
    g = torch.Generator().manual_seed(n)
    z = torch.randn(3, n, 6, generator=g, requires_grad=True)
    y = torch.randn(3, n, 40, generator=g, requires_grad=True)
    z2, y2 = (t.detach().clone().requires_grad_() for t in (z, y))
    got, want = ndiv(z, y), ndiv_loop(z2, y2)
    assert got.shape == (3,)
    torch.testing.assert_close(got, want, rtol=1e-6, atol=1e-7)
    w = torch.rand(3, generator=g)
    (got * w).sum().backward()
    (want * w).sum().backward()
    torch.testing.assert_close(y.grad, y2.grad, rtol=1e-5, atol=1e-7)
    torch.testing.assert_close(z.grad, z2.grad, rtol=1e-5, atol=1e-7)
    if n > 2:  # with two samples every normalised distance is 1: relu(α − 1) = 0
        assert bool((y.grad != 0).any())


def test_ndiv_alpha_and_a_collapsed_input():
    """N = 2: every normalised distance is 1 (or 0 for identical samples), so the loss is
    relu(α − 1) = 0 for distinct outputs and 2α / 2 = α when the outputs collapsed."""
    z = torch.randn(2, 2, 4)
    y = torch.randn(2, 2, 9)
    y[1, 1] = y[1, 0]
    torch.testing.assert_close(ndiv(z, y, alpha=0.8), torch.tensor([0.0, 0.8]))
    torch.testing.assert_close(ndiv(z, y, alpha=1.5)[1], torch.tensor(1.5))
    # identical samples keep finite gradients (the zero distances)
    y = y.requires_grad_()
    ndiv(z, y).sum().backward()
    assert bool(torch.isfinite(y.grad).all())


def test_ndiv_normaliser_is_detached():
    """Gradients flow through the distances only: as the reference with a detached row sum,
    not as the same formula differentiated through the sums."""
    g = torch.Generator().manual_seed(1)
    z = torch.randn(2, 4, 3, generator=g)
    y = torch.randn(2, 4, 12, generator=g, requires_grad=True)
    (grad,) = torch.autograd.grad(ndiv(z, y).sum(), y)

    def undetached(x):
        d = torch.cdist(x, x)
        return d / (d.sum(-1, keepdim=True) + 1e-12)

    y2 = y.detach().clone().requires_grad_()
    full = F.relu(0.8 * undetached(z) - undetached(y2)).sum((-2, -1)) / 12
    (grad_full,) = torch.autograd.grad(full.sum(), y2)
    torch.testing.assert_close(ndiv(z, y), full.detach())  # same values
    assert not torch.allclose(grad, grad_full)  # different gradients
    y3 = y.detach().clone().requires_grad_()
    torch.testing.assert_close(grad, torch.autograd.grad(ndiv_loop(z, y3).sum(), y3)[0])


def test_ndiv_rejects_bad_shapes():
    with pytest.raises(ValueError, match=r"z \[B, N, Dz\]"):
        ndiv(torch.randn(2, 3, 4), torch.randn(2, 4, 4))
    with pytest.raises(ValueError, match="N >= 2"):
        ndiv(torch.randn(2, 1, 4), torch.randn(2, 1, 4))


# --------------------------------------------------------------------------- the NDiv loss


def _sample_batch(b=2, n=4, sizes=(4, 8, 16), seed=0, styles=True, z=False):
    """LossInputs with n samples per input: a pyramid of the given sizes and per-level codes."""
    g = torch.Generator().manual_seed(seed)
    pyramid = [torch.tanh(torch.randn(b * n, 3, s, s, generator=g)).requires_grad_() for s in sizes]
    lat = synth.Latents(
        styles=[torch.randn(b * n, 5, generator=g) for _ in sizes] if styles else None,
        z=torch.randn(b * n, 7, generator=g) if z else None,
    )
    out = synth.SynthesisOutput(image=pyramid[-1], pyramid=pyramid, latents=lat)
    cond = synth.Condition(mask=torch.ones(b * n, 1, sizes[-1], sizes[-1]))
    return synth.LossInputs(
        "generator",
        cond,
        fake=out,
        samples=rearrange(pyramid[-1], "(b n) c h w -> b n c h w", n=n),
        sample_latents=lat,
        sample_output=out,
    )


def _level_term(batch, k, code, n=4):
    y = rearrange(batch.sample_output.pyramid[k], "(b n) c h w -> b n (c h w)", n=n)
    return ndiv_loop(rearrange(code, "(b n) d -> b n d", n=n), y).mean()


def test_ndiv_loss_sums_the_levels_with_their_codes():
    batch = _sample_batch()
    want = sum(_level_term(batch, k, batch.sample_latents.styles[k]) for k in range(3))
    got = NDiv()(batch)
    torch.testing.assert_close(got, want, rtol=1e-6, atol=1e-7)
    got.backward()
    assert all(bool((t.grad != 0).any()) for t in batch.sample_output.pyramid)


def test_ndiv_loss_scales_subset_and_alpha():
    batch = _sample_batch(seed=1)
    styles = batch.sample_latents.styles
    want = _level_term(batch, 0, styles[0]) + _level_term(batch, 2, styles[2])
    torch.testing.assert_close(NDiv(scales=[0, -1])(batch), want, rtol=1e-6, atol=1e-7)
    y = rearrange(batch.sample_output.pyramid[1], "(b n) c h w -> b n (c h w)", n=4)
    z = rearrange(styles[1], "(b n) d -> b n d", n=4)
    torch.testing.assert_close(NDiv(scales=[1], alpha=1.3)(batch), ndiv(z, y, 1.3).mean())
    with pytest.raises(ValueError, match="not levels"):
        NDiv(scales=[3])(batch)


def test_ndiv_loss_prefers_mapped_codes_then_styles_then_z():
    batch = _sample_batch(seed=2, z=True)
    mapped = torch.randn(8, 11)
    batch.sample_output.extras["scale_code/1"] = mapped
    lat = batch.sample_latents
    want = (
        _level_term(batch, 0, lat.styles[0])
        + _level_term(batch, 1, mapped)
        + _level_term(batch, 2, lat.styles[2])
    )
    torch.testing.assert_close(NDiv()(batch), want, rtol=1e-6, atol=1e-7)
    only_z = _sample_batch(seed=3, styles=False, z=True)
    want = sum(_level_term(only_z, k, only_z.sample_latents.z) for k in range(3))
    torch.testing.assert_close(NDiv()(only_z), want, rtol=1e-6, atol=1e-7)


def test_ndiv_loss_without_a_pyramid_is_the_single_scale_ndiv():
    batch = _sample_batch(seed=4, styles=False, z=True)
    batch.sample_output = None
    y = rearrange(batch.samples, "b n c h w -> b n (c h w)")
    z = rearrange(batch.sample_latents.z, "(b n) d -> b n d", n=4)
    torch.testing.assert_close(NDiv()(batch), ndiv_loop(z, y).mean(), rtol=1e-6, atol=1e-7)


def test_ndiv_loss_errors_name_what_is_missing():
    batch = _sample_batch(styles=False)
    with pytest.raises(ValueError, match=r"scale_code/0.*styles.*z"):
        NDiv()(batch)
    batch.samples = None
    with pytest.raises(ValueError, match="samples_per_input"):
        NDiv()(batch)


# --------------------------------------------------------------------------- Disentangle


def _pyramid_batch(sizes, seed=0, b=2, image=None):
    g = torch.Generator().manual_seed(seed)
    levels = [torch.tanh(torch.randn(b, 3, s, s, generator=g)).requires_grad_() for s in sizes]
    cond = synth.Condition(mask=torch.ones(b, 1, sizes[-1], sizes[-1]), image=image)
    out = synth.SynthesisOutput(image=levels[-1], pyramid=levels)
    return synth.LossInputs("generator", cond, fake=out)


def test_disentangle_matches_eq1_with_2x2_pooling():
    batch = _pyramid_batch([4, 8, 16, 32])
    lv = batch.fake.pyramid
    want = sum(squared_distance(avg_pool_2x2(lv[i + 1]), lv[i]) for i in range(3))
    got = Disentangle()(batch)
    torch.testing.assert_close(got, want, rtol=1e-6, atol=1e-7)
    got.backward()
    assert all(bool((t.grad != 0).any()) for t in lv)  # both sides of every pair


def test_disentangle_pools_levels_that_jump_by_the_integer_factor():
    """Levels 4, 16, 32 (an adapter over stages whose scales jump): S applied twice is 4×4
    pooling."""
    batch = _pyramid_batch([4, 16, 32], seed=1)
    lv = batch.fake.pyramid
    want = squared_distance(avg_pool_2x2(avg_pool_2x2(lv[1])), lv[0]) + squared_distance(
        avg_pool_2x2(lv[2]), lv[1]
    )
    torch.testing.assert_close(Disentangle()(batch), want, rtol=1e-6, atol=1e-7)


def test_disentangle_is_zero_on_a_consistent_pyramid_and_rejects_other_sizes():
    fine = torch.randn(2, 3, 16, 16)
    levels = [avg_pool_2x2(avg_pool_2x2(fine)), avg_pool_2x2(fine), fine]
    cond = synth.Condition(mask=torch.ones(2, 1, 16, 16))
    batch = synth.LossInputs("generator", cond, fake=synth.SynthesisOutput(fine, pyramid=levels))
    assert float(Disentangle()(batch)) < 1e-12
    batch.fake.pyramid = [torch.randn(2, 3, 6, 6), fine]
    with pytest.raises(ValueError, match="integer factor"):
        Disentangle()(batch)
    batch.fake.pyramid = None
    with pytest.raises(ValueError, match="nested_scale.pyramid"):
        Disentangle()(batch)


def test_disentangle_include_input_matches_the_low_resolution_image():
    """Super-resolution: the 32×32 level pooled to 16×16 against the 16×16 input."""
    low = torch.tanh(torch.randn(2, 3, 16, 16))
    batch = _pyramid_batch([32, 64], seed=2, image=low)
    lv = batch.fake.pyramid
    pairs = squared_distance(avg_pool_2x2(lv[1]), lv[0])
    want = pairs + squared_distance(avg_pool_2x2(lv[0]), low)
    torch.testing.assert_close(Disentangle(include_input=True)(batch), want, rtol=1e-6, atol=1e-7)
    torch.testing.assert_close(Disentangle()(batch), pairs, rtol=1e-6, atol=1e-7)
    assert Disentangle.requirements(Disentangle.Config(include_input=True)) == {"image"}
    batch.cond = synth.Condition(mask=torch.ones(2, 1, 64, 64))
    with pytest.raises(ValueError, match="Condition.image"):
        Disentangle(include_input=True)(batch)


# --------------------------------------------------------------------------- conformance


@pytest.mark.parametrize("name", ["nested_scale.disentangle", "nested_scale.ndiv"])
def test_losses_pass_check_part(nested_registry, name):
    synth.testing.check_part(name)


def test_ndiv_passes_check_part_on_single_scale_samples(nested_registry):
    """The kit's inputs for ``needs = {"samples"}`` (samples and their z, no pyramid), with the
    first two samples of each input nearly collapsed so that the hinge is active."""

    def inputs(*, batch_size, size, generator):
        batch = synth.testing.make_loss_inputs(
            "generator", {"samples"}, batch_size=batch_size, size=size, generator=generator
        )
        x = batch.samples.detach().clone()
        x[:, 1] = x[:, 0] + 0.01 * x[:, 1]
        batch.samples = x.requires_grad_()
        return {"batch": batch}

    synth.testing.check_part("nested_scale.ndiv", example_inputs=inputs)
