"""CLVAE benchmarks (issues 5 and 18) at ADE20K settings: 151 classes, code size 151, batch 1.

**Reference.** With a local checkout of the authors' code (endo-yuki-t/DiversifyingSMIS, a
fork of NVlabs/SPADE: ``--official PATH`` or ``SYNTH_OFFICIAL_DIVERSIFYINGSMIS``) the reference
is *their* modules, imported from the checkout (never vendored: SPADE-derived code is
non-commercial): their ``SPADEGenerator``, ``ConvEncoder``, ``MultiscaleDiscriminator``,
``VGGLoss``/``GANLoss``/``KLDLoss`` and ``Pix2PixModel.compute_generator_loss`` for the VAE-GAN
step, built with their ADE20K options and their ``init_weights('xavier', 0.02)``. Ours are
synth's parts converted from the same state dicts (``from_official_clvae`` /
``from_official_spade``) and outputs are asserted equal (≤ 1e-4) before timing. Each such
row also holds a **ceiling**: the work ours repeats as is (the official network's ordinary
convolutions, param-free norms, VGG...) captured during one official call and replayed alone;
``ceiling = reference / shared`` caps any ratio, ``of_ceiling = ratio / ceiling``. Without a
checkout the reference is the re-implementation of the official layout in
``tests/clvae/official.py`` (dense convolutions of the one-hot / class-painted maps, loops over
classes), and each row's ``reference`` field says which one ran.

Rows (official reference):

1. the label-map conv alone: SPADE's ``mlp_shared`` conv (one-hot, 151 -> 128), dense vs gather;
2. generator forward (``no_grad``), 256², ngf 64 at ``--paper-sizes``;
3. encoder forward with 121 of 151 classes present (a 16×16 random grid, upsampled), and on a
   17-class ADE20K-like layout (:func:`voronoi_layout`: warped Voronoi cells, seed 0);
4. forward + backward of one VAE-GAN generator step: E posterior -> G -> D on fake and real,
   hinge + KL (λ 0.05) + feature matching (λ 10) + VGG (λ 10; random VGG19 weights, the same
   in both).

Reference and ours are timed interleaved (``bench/harness.py``); times are medians in ms; peak
memory is the growth of the process's peak RSS during the first timed call. ``run()`` returns
the rows for ``bench/run_all.py``; the CLI prints a table and writes
``bench/results/<YYYY-MM-DD>-cpu-clvae.json``.

    .venv/bin/python bench/clvae.py [--ngf 16] [--iters 3] [--size 256]
    SYNTH_OFFICIAL_DIVERSIFYINGSMIS=/src/DiversifyingSMIS .venv/bin/python bench/clvae.py \
        --paper-sizes            # 256², ngf = ndf = 64, 2 threads: the issue-18 numbers
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import importlib
import importlib.util
import json
import sys
import tempfile
import types
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import harness
import official
import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.clvae.official import (  # noqa: E402
    OfficialEncoder,
    OfficialGenerator,
    OfficialMultiscaleD,
    one_hot,
    paint_loop,
)

import synth  # noqa: E402
from synth.nn.layers import label_conv2d  # noqa: E402
from synth.parts.objectives import _detached, discriminate, frozen, weighted_losses  # noqa: E402
from synth_clvae import from_official_clvae, from_official_spade  # noqa: E402

K = 151

# ----------------------------------------------------------------------------- the authors' code

#: Issue 18's targets at the papers' sizes, in the order of :func:`official_rows`: generator,
#: encoder with 121 classes present, encoder on a 17-class layout, VAE-GAN generator step.
TARGETS = (1.5, 6.0, 2.5, 2.0)

PAPER_NOTE = (
    "official modules imported from the checkout (never vendored); stubs: "
    "models.networks.sync_batchnorm.SynchronizedBatchNorm2d = nn.BatchNorm2d (what it computes "
    "in one process; the submodule is absent from the checkout), 'dill' (imported by util.util "
    "for pickling, unused here) when not installed; VGG19 built by torchvision without "
    "pretrained weights (random, the same in both: speed does not depend on them) and kept on "
    "the CPU (VGGLoss calls .cuda())"
)


@contextlib.contextmanager
def _official_imports(root: Path) -> Iterator[dict[str, Any]]:
    """The authors' generator, encoder, discriminator and loss modules from ``root``.

    Stubs (inserted here, removed on exit): the ``sync_batchnorm`` submodule the checkout lacks
    and ``dill`` when it is not installed (``util.util`` imports it at import time only).
    """
    stubs = {"models.networks.sync_batchnorm": types.ModuleType("models.networks.sync_batchnorm")}
    stubs["models.networks.sync_batchnorm"].SynchronizedBatchNorm2d = nn.BatchNorm2d
    if importlib.util.find_spec("dill") is None:
        stubs["dill"] = types.ModuleType("dill")
    saved = {k: sys.modules.get(k) for k in stubs}
    sys.modules.update(stubs)
    try:
        with official.imported(root):
            yield {
                "generator": importlib.import_module("models.networks.generator"),
                "encoder": importlib.import_module("models.networks.encoder"),
                "discriminator": importlib.import_module("models.networks.discriminator"),
                "loss": importlib.import_module("models.networks.loss"),
                "model": importlib.import_module("models.pix2pix_model"),
            }
    finally:
        for k, v in saved.items():
            if v is None:
                sys.modules.pop(k, None)
            else:
                sys.modules[k] = v


@contextlib.contextmanager
def _cpu_random_vgg() -> Iterator[None]:
    """While building the authors' ``VGGLoss``: torchvision's VGG19 without a download and
    ``Module.cuda`` a no-op (their loss moves itself to the GPU)."""
    import torchvision

    vgg19, cuda = torchvision.models.vgg19, nn.Module.cuda
    torchvision.models.vgg19 = lambda pretrained=False, **kw: vgg19(weights=None)
    nn.Module.cuda = lambda self, *a, **k: self  # type: ignore[method-assign]
    try:
        yield
    finally:
        torchvision.models.vgg19, nn.Module.cuda = vgg19, cuda  # type: ignore[method-assign]


def official_options(k: int, ngf: int, ndf: int, size: int, batch: int = 1) -> argparse.Namespace:
    """The authors' ADE20K options (``data/ade20k_dataset.py`` + the generator's defaults)."""
    return argparse.Namespace(
        ngf=ngf, ndf=ndf, semantic_nc=k, label_nc=k - 1, contain_dontcare_label=True,
        output_nc=3, z_dim=256, z_dim_local=k, use_vae=True, crop_size=size, aspect_ratio=1.0,
        num_upsampling_layers="normal", norm_G="spectralspadesyncbatch3x3",
        norm_E="spectralinstance", norm_D="spectralinstance", gpu_ids=[], no_instance=True,
        netD_subarch="n_layer", n_layers_D=4, num_D=2, no_ganFeat_loss=False,
        no_vgg_loss=False, gan_mode="hinge", lambda_feat=10.0, lambda_vgg=10.0,
        lambda_kld=0.05, isTrain=True, batchSize=batch, style_id=-1,
    )  # fmt: skip


def _calibrate_batch_norm(net: nn.Module, *args: object) -> None:
    """Running statistics from one training-mode forward (momentum 1), so that eval-mode batch
    norm normalises (identity statistics let untrained activations saturate tanh)."""
    bns = [m for m in net.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    for m in bns:
        m.momentum = 1.0
    net.train()
    with torch.no_grad():
        net(*args)
    for m in bns:
        m.momentum = 0.1
    net.eval()


def voronoi_layout(size: int, classes: int = 17, num_classes: int = K, seed: int = 0) -> Tensor:
    """``LongTensor[1, size, size]``: an ADE20K-like layout of ``classes`` large contiguous
    regions — the Voronoi cells of ``classes`` random sites (fixed seed), each a distinct class
    drawn from ``num_classes``, boundaries warped by a smooth random field so the regions are
    not polygons."""
    g = torch.Generator().manual_seed(seed)
    sites = torch.rand(classes, 2, generator=g)
    ids = torch.randperm(num_classes, generator=g)[:classes]
    axis = (torch.arange(size) + 0.5) / size
    yy, xx = torch.meshgrid(axis, axis, indexing="ij")
    warp = F.interpolate(torch.randn(1, 2, 6, 6, generator=g), size=(size, size), mode="bicubic")
    pts = torch.stack([yy, xx], -1) + 0.06 * rearrange(warp[0], "c h w -> h w c")
    nearest = torch.cdist(pts.reshape(-1, 2), sites).argmin(1)
    return ids[nearest].reshape(1, size, size)


def _replay(
    calls: list[tuple[nn.Module, tuple[Tensor, ...]]], backward: bool
) -> Callable[[], None]:
    """Run every captured ``module(*inputs)`` again (and its backward with unit gradients)."""

    def go() -> None:
        for module, inputs in calls:
            if not backward:
                module(*inputs)
                continue
            ins = [x.detach().requires_grad_(x.requires_grad) for x in inputs]
            out = module(*ins)
            outs = out if isinstance(out, (list, tuple)) else [out]
            leaves = [o for o in _flat(outs) if o.requires_grad]
            if leaves:
                torch.autograd.backward(leaves, [torch.ones_like(o) for o in leaves])

    return go


def _flat(xs: list[Any]) -> list[Tensor]:
    out: list[Tensor] = []
    for x in xs:
        out.extend(_flat(list(x)) if isinstance(x, (list, tuple)) else [x])
    return out


def _capture(modules: list[nn.Module], fn: Callable[[], object]) -> list[tuple[nn.Module, Any]]:
    """The ``(module, inputs)`` of every call of ``modules`` while ``fn`` runs."""
    calls: list[tuple[nn.Module, Any]] = []
    hooks = [
        m.register_forward_pre_hook(lambda m, inp: calls.append((m, tuple(inp)))) for m in modules
    ]
    try:
        fn()
    finally:
        for h in hooks:
            h.remove()
    return calls


def _shared_generator_modules(net: nn.Module) -> list[nn.Module]:
    """The official generator's modules whose work ours repeats as is: ``fc``, the residual
    convs, each SPADE's param-free norm and γ/β convs, ``conv_img`` (not the label convs
    ``mlp_shared`` nor the class painting)."""
    out: list[nn.Module] = [net.fc, net.conv_img]
    for block in net.children():
        if not hasattr(block, "conv_0"):
            continue
        out += [block.conv_0, block.conv_1] + ([block.conv_s] if block.learned_shortcut else [])
        for norm in [block.norm_0, block.norm_1] + (
            [block.norm_s] if block.learned_shortcut else []
        ):
            out += [norm.param_free_norm, norm.mlp_gamma, norm.mlp_beta]
    return out


def _shared_encoder_modules(net: nn.Module) -> list[nn.Module]:
    """The official encoder's trunk (spectral conv + instance norm layers) and global heads."""
    layers = [getattr(net, f"layer{i}") for i in range(1, 7) if hasattr(net, f"layer{i}")]
    return [*layers, net.fc_mu, net.fc_var]


def _with_ceiling(
    row: dict[str, object], shared: Callable[[], object], repeats: int
) -> dict[str, object]:
    """Add the shared-work time (timed right after the pair) and the ceiling it puts on the
    ratio: ``shared_s``, ``ceiling = reference_s / shared_s``, ``of_ceiling = ratio / ceiling``."""
    sh = harness.variant(
        f"{row['name']}: shared work only", row["setting"], shared, repeats=repeats
    )
    row["shared_s"] = sh["seconds"]
    row["shared_runs_s"] = sh["runs_s"]
    row["ceiling"] = row["reference_s"] / sh["seconds"]
    row["of_ceiling"] = row["ratio"] / row["ceiling"]
    print(
        f"[{harness.elapsed()}]   ceiling {row['ceiling']:.2f}x, ours at "
        f"{100 * row['of_ceiling']:.0f}% of it",
        flush=True,
    )
    return row


def official_rows(
    root: Path,
    size: int,
    ngf: int,
    ndf: int,
    repeats: int,
    variants: list[dict[str, object]] | None = None,
) -> list[dict[str, object]]:
    """Generator, encoder (121 and 17 classes) and VAE-GAN step rows against the authors'
    modules from ``root`` (CPU), each with its ceiling; variant rows (ours with and without
    the piecewise γ/β) are appended to ``variants``."""
    variants = [] if variants is None else variants
    s, reference = size, official.label("clvae", root)
    with _official_imports(root) as mods, _cpu_random_vgg():
        opt = official_options(K, ngf, ndf, s)
        torch.manual_seed(0)
        off_g = mods["generator"].SPADEGenerator(opt)
        # their encoder hard-codes 256² inputs (it resizes to 256, s0 = 4 needs layer6)
        off_e = mods["encoder"].ConvEncoder(official_options(K, ngf, ndf, max(s, 256)))
        off_d = mods["discriminator"].MultiscaleDiscriminator(opt)
        for net in (off_g, off_e, off_d):
            net.init_weights("xavier", 0.02)  # their init (train.py's defaults)
        loss_mod = mods["loss"]
        vgg_loss = loss_mod.VGGLoss(opt.gpu_ids)
        pm = mods["model"].Pix2PixModel.__new__(mods["model"].Pix2PixModel)
        nn.Module.__init__(pm)  # their __init__ would build (and load) the networks itself
        pm.opt, pm.FloatTensor, pm.ByteTensor, pm.style_dict = (
            opt,
            torch.FloatTensor,
            torch.ByteTensor,
            {},
        )
        pm.netG, pm.netD, pm.netE = off_g, off_d, off_e
        pm.criterionGAN = loss_mod.GANLoss("hinge", tensor=torch.FloatTensor, opt=opt)
        pm.criterionFeat, pm.criterionVGG, pm.KLDLoss = nn.L1Loss(), vgg_loss, loss_mod.KLDLoss()

    g = torch.Generator().manual_seed(0)
    many = synth.nn.ops.resize_labels(torch.randint(0, K, (1, 16, 16), generator=g), (s, s))
    few = voronoi_layout(s)
    image = torch.rand(1, 3, s, s, generator=g) * 2 - 1
    codes = torch.randn(1, 5, K, K, generator=g)
    z = torch.randn(1, 256, generator=g)
    z_dict: dict[object, Tensor] = {c: codes[:, :, c] for c in range(K)}
    z_dict["global"] = z
    _calibrate_batch_norm(off_g, one_hot(many, K), z_dict)
    gen = from_official_clvae(off_g.state_dict(), "G", crop_size=s).eval()
    enc = from_official_clvae(off_e.state_dict(), "E").eval()
    disc = from_official_spade(off_d.state_dict(), "D")
    off_e.eval()
    rows: list[dict[str, object]] = []
    timing = {"repeats": repeats, "memory": True}
    setting = f"{s}x{s}, K={K}, code {K}, batch 1, ngf {ngf}, ndf {ndf}, 2 threads"
    n_many = int(many.unique().numel())

    # generator forward
    cond = synth.Condition(label_map=many, num_classes=K)
    seg = one_hot(many, K)
    lat = synth.Latents(z=z, class_codes=enc.to_stage_codes(codes))
    with torch.no_grad():
        torch.testing.assert_close(gen(cond, lat).image, off_g(seg, z_dict), rtol=0, atol=1e-4)
        row = harness.compare(
            "clvae: generator forward (official vs ours)",
            f"{setting}, {n_many} classes present",
            lambda: off_g(seg, z_dict),
            lambda: gen(cond, lat),
            **timing,
        )
        calls = _capture(_shared_generator_modules(off_g), lambda: off_g(seg, z_dict))
        rows.append(_with_ceiling(row, _replay(calls, backward=False), repeats))
        del calls
        variants.extend(_piecewise_variants(gen, cond, lat, setting, repeats))

        # encoder forward, two layouts
        for labels, what in ((many, "random grid"), (few, "Voronoi layout, seed 0")):
            c = synth.Condition(label_map=labels, num_classes=K)
            sg = one_hot(labels, K)
            n = int(labels.unique().numel())
            _check_encoder(off_e(image, sg), enc.encode(image, c), labels)
            row = harness.compare(
                f"clvae: encoder forward, {n} classes present (official vs ours)",
                f"{setting}, {n} of {K} classes present ({what})",
                lambda sg=sg: off_e(image, sg),
                lambda c=c: enc.encode(image, c),
                **timing,
            )
            calls = _capture(_shared_encoder_modules(off_e), lambda sg=sg: off_e(image, sg))
            rows.append(_with_ceiling(row, _replay(calls, backward=False), repeats))
            del calls

    # VAE-GAN generator step: E -> G -> D, hinge + KL + FM + VGG, forward + backward
    gen.train(), enc.train(), disc.train(), off_g.train(), off_e.train(), off_d.train()
    vgg_file = Path(tempfile.mkdtemp()) / "vgg19-official.pth"
    torch.save(
        {f"features.{k.split('.', 1)[1]}": v for k, v in vgg_loss.vgg.state_dict().items()},
        vgg_file,
    )
    losses = {
        # the clvae recipes' GauGAN losses: hinge averaged over D's scales, FM with 1/num_D
        "gan": synth.build({"type": "core.hinge", "reduce_scales": "mean"}),
        "fm": synth.build(
            {"type": "core.feature_matching", "weight": opt.lambda_feat, "weighting": "spade"}
        ),
        "vgg": synth.build(
            {"type": "core.perceptual", "weight": opt.lambda_vgg, "weights": str(vgg_file)}
        ),
        "kl": synth.build({"type": "clvae.kl", "weight": opt.lambda_kld}),
    }

    def ref_step() -> dict[str, Tensor]:
        g_losses, _ = pm.compute_generator_loss(seg, image)
        sum(g_losses.values()).mean().backward()  # trainers/pix2pix_trainer.py
        return g_losses

    def our_step() -> dict[str, Tensor]:
        post = enc.posterior(image, cond)
        fake = gen(cond, post)
        with frozen(disc):  # core.gan's generator step: no gradients for D's weights
            d_fake, d_real = discriminate(disc, fake, image, cond)
        batch = synth.LossInputs(
            "generator", cond, real=image, fake=fake, latents=post,
            disc_real=_detached(d_real), disc_fake=d_fake,
        )  # fmt: skip
        total, logs = weighted_losses(losses, batch, frozenset({"generator", "encoder"}), "g")
        total.backward()
        return logs

    # equal losses need equal draws (the check runs with ε = 0) and the same σ: torch's old
    # spectral_norm (theirs) updates v then u, the parametrization (ours) u then v, so the
    # check runs without power iterations (their sigma from the same u, v)
    with _no_noise(), _no_power_iteration(off_g, off_e, off_d, gen, enc, disc):
        theirs, ours = ref_step(), our_step()
    for mine, their in (("gan", "GAN"), ("fm", "GAN_Feat"), ("vgg", "VGG"), ("kl", "KLD")):
        torch.testing.assert_close(
            (ours[f"g/{mine}"] * losses[mine].weight).reshape(()),
            theirs[their].detach().float().reshape(()),
            rtol=1e-4,
            atol=1e-4,
        )
    row = harness.compare(
        "clvae: VAE-GAN generator step fwd+bwd (E -> G -> D, hinge + KL + FM + VGG)",
        f"{setting}, {n_many} classes present, VGG19 random weights",
        ref_step,
        our_step,
        **timing,
    )
    shared_modules = (
        _shared_generator_modules(off_g)
        + _shared_encoder_modules(off_e)
        + [vgg_loss.vgg]
        + _shared_discriminator_modules(off_d)
    )
    calls = _capture(shared_modules, ref_step)

    def shared_step() -> None:
        with frozen(off_d):
            _replay(calls, backward=True)()

    rows.append(_with_ceiling(row, shared_step, repeats))
    vgg_file.unlink()
    for r, target in zip(rows, TARGETS):
        r["reference"] = reference
        r["notes"] = PAPER_NOTE
        r["target"] = target
    return rows


def _piecewise_variants(
    gen: nn.Module, cond: synth.Condition, lat: synth.Latents, setting: str, repeats: int
) -> list[dict[str, object]]:
    """Our generator with SPADE's γ/β by the dense convs everywhere vs piecewise (the dense
    convs only near class boundaries, :func:`synth_clvae.norms.piecewise_gamma_beta`),
    interleaved: whether the piecewise path pays on this machine."""
    from synth_clvae import norms

    default = norms.PIECEWISE_MAX_BOUNDARY

    def with_boundary(limit: float) -> Callable[[], object]:
        def go() -> object:
            norms.PIECEWISE_MAX_BOUNDARY = limit
            try:
                return gen(cond, lat)
            finally:
                norms.PIECEWISE_MAX_BOUNDARY = default

        return go

    return harness.interleaved_variants(
        setting,
        {
            "clvae: our generator, gamma/beta by dense convs everywhere": with_boundary(0.0),
            "clvae: our generator, piecewise gamma/beta (default)": with_boundary(default),
        },
        repeats=repeats,
    )


@contextlib.contextmanager
def _no_noise() -> Iterator[None]:
    """``torch.randn_like`` returns zeros inside (both reparameterisations then give μ)."""
    randn_like = torch.randn_like
    torch.randn_like = lambda t, **kw: torch.zeros_like(t, **kw)  # type: ignore[assignment]
    try:
        yield
    finally:
        torch.randn_like = randn_like  # type: ignore[assignment]


@contextlib.contextmanager
def _no_power_iteration(*nets: nn.Module) -> Iterator[None]:
    """Spectral-norm modules (old hooks and parametrizations) in eval mode inside."""
    from torch.nn.utils import parametrize

    mods = [
        m
        for net in nets
        for m in net.modules()
        if hasattr(m, "weight_orig") or parametrize.is_parametrized(m)
    ]
    flags = [m.training for m in mods]
    for m in mods:
        m.train(False)
    try:
        yield
    finally:
        for m, flag in zip(mods, flags):
            m.train(flag)


def _shared_discriminator_modules(net: nn.Module) -> list[nn.Module]:
    """Every layer of the official D except the finest scale's first conv (ours gathers the
    one-hot part of its input)."""
    out: list[nn.Module] = []
    for i, d in enumerate(net.children()):
        out += [m for n, m in d.named_children() if i > 0 or n != "model0"]
    return out


def _check_encoder(
    theirs: tuple[dict, dict, dict], ours: dict[str, Tensor], labels: Tensor
) -> None:
    """The authors' per-class dicts against our ``[B, 5, K, D]`` posterior (≤ 1e-4)."""
    mu, logvar, computed = theirs
    torch.testing.assert_close(ours["mu"], mu["global"], rtol=0, atol=1e-4)
    torch.testing.assert_close(ours["logvar"], logvar["global"], rtol=0, atol=1e-4)
    for c in labels.unique().tolist():
        torch.testing.assert_close(ours["class_mu"][:, :, c], mu[c], rtol=0, atol=1e-4)
        torch.testing.assert_close(ours["class_logvar"][:, :, c], logvar[c], rtol=0, atol=1e-4)
        assert ours["present"][0, :, c].tolist() == computed[c][0]


def run(
    size: int = 256,
    ngf: int = 16,
    ndf: int = 16,
    repeats: int = 3,
    device: torch.device | str = "cpu",
    official_root: str | Path | None = None,
) -> dict[str, object]:
    """All CLVAE comparisons at ``size×size`` (``rows``), each with peak-memory columns on CPU.

    ``official_root`` (else ``SYNTH_OFFICIAL_DIVERSIFYINGSMIS``): a checkout of the authors'
    code; the network rows then time their modules (:func:`official_rows`), otherwise the
    re-implementation in ``tests/clvae/official.py``. Every row's ``reference`` says which.

    On CUDA only the SPADE conv row runs: the authors' generator and encoder build their
    painted maps and pooled codes with CPU tensors when ``gpu_ids`` is empty, as does the
    re-implementation; the other rows are listed under ``skipped``.
    """
    device = torch.device(device)
    root = official.checkout("clvae", official_root)
    torch.manual_seed(0)
    s, d = size, K
    g = torch.Generator().manual_seed(0)
    labels = synth.nn.ops.resize_labels(torch.randint(0, K, (1, 16, 16), generator=g), (s, s))
    present = int(labels.unique().numel())
    image = torch.rand(1, 3, s, s, generator=g) * 2 - 1
    labels, image = labels.to(device), image.to(device)
    cond = synth.Condition(label_map=labels, num_classes=K)
    seg = one_hot(labels, K)
    rows: list[dict[str, object]] = []
    timing = {"repeats": repeats, "device": device, "memory": True}
    setting = f"{s}x{s}, K={K}, code {d}, batch 1"
    net_setting = f"{setting}, ngf {ngf}, ndf {ndf}"

    # 1. label-map convolutions alone
    w = torch.randn(128, K, 3, 3, device=device)
    wd = torch.randn(128, d, 3, 3, device=device)
    vectors = torch.randn(1, K, d, device=device)
    with torch.no_grad():
        torch.testing.assert_close(
            label_conv2d(labels, w, padding=1), F.conv2d(seg, w, padding=1), rtol=1e-3, atol=1e-3
        )
        rows.append(
            harness.compare(
                "clvae: SPADE mlp_shared conv (one-hot 151->128), dense vs gather",
                setting,
                lambda: F.conv2d(one_hot(labels, K), w, padding=1),
                lambda: label_conv2d(labels, w, padding=1),
                **timing,
            )
        )
    rows[-1]["reference"] = "dense F.conv2d of the one-hot map (the official SPADE's conv)"
    result = {
        "benchmark": "clvae",
        "settings": {
            "num_classes": K,
            "code_dim": d,
            "size": s,
            "batch": 1,
            "ngf": ngf,
            "ndf": ndf,
            "spade_hidden": 128,
            "classes_present": present,
            "repeats": repeats,
            "device": str(device),
            "reference": official.label("clvae", root),
        },
        "rows": rows,
        "variants": [],
        "errors": [],
    }
    if device.type != "cpu":
        result["skipped"] = [
            "CSE conv, generator, encoder and VAE-GAN step: tests/clvae/official.py is CPU-only"
        ]
        return result
    if root is not None:  # the authors' code first; the re-implementation rows still run
        rows.extend(official_rows(root, s, ngf, ndf, repeats, result["variants"]))

    first = len(rows)
    with torch.no_grad():
        rows.append(
            harness.compare(
                "clvae: CSE conv (painted 151->128), loop paint + dense vs gather",
                setting,
                lambda: F.conv2d(paint_loop(labels, vectors), wd, padding=1),
                lambda: label_conv2d(labels, wd, padding=1, class_vectors=vectors),
                **timing,
            )
        )

    # 2.-4. networks: official layout (loops, dense) vs ours (converted, same weights)
    off_g = OfficialGenerator(K, ngf, z_dim=256, crop=s, code_dim=d).eval()
    off_e = OfficialEncoder(ngf, 6, s // 64, 256, code_dim=d).eval()
    off_d = OfficialMultiscaleD(K + 3, ndf, 4, 2)
    gen = from_official_clvae(off_g.state_dict(), "G", crop_size=s).eval()
    enc = from_official_clvae(off_e.state_dict(), "E").eval()
    disc = from_official_spade(off_d.state_dict(), "D")
    z, codes = torch.randn(1, 256), torch.randn(1, 5, K, d)
    lat = synth.Latents(z=z, class_codes=enc.to_stage_codes(codes))
    with torch.no_grad():
        # untrained weights with identity BN statistics give huge activations: allow the odd
        # saturated pixel whose sign flips under cancellation, require the rest to match
        diff = (gen(cond, lat).image - off_g(seg, z, codes)).abs()
        assert (diff > 1e-3).float().mean() < 1e-4, float(diff.max())
        p = enc.encode(image, cond)
        torch.testing.assert_close(p["class_mu"], off_e(image, labels, K)[2], rtol=1e-3, atol=1e-3)
        rows.append(
            harness.compare(
                "clvae: generator forward (official layout vs ours)",
                net_setting,
                lambda: off_g(seg, z, codes),
                lambda: gen(cond, lat),
                **timing,
            )
        )
        rows.append(
            harness.compare(
                "clvae: encoder forward, class-wise max-pool loop vs ours",
                net_setting,
                lambda: off_e(image, labels, K),
                lambda: enc.encode(image, cond),
                **timing,
            )
        )
    gen.train(), enc.train(), disc.train(), off_g.train(), off_e.train(), off_d.train()

    def ref_step() -> None:
        mu, logvar, cmu, clv, pres = off_e(image, labels, K)
        zz = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
        cc = cmu + torch.randn_like(cmu) * torch.exp(0.5 * clv)
        fake = off_g(seg, zz, cc)
        outs = off_d(torch.cat([seg, fake], 1))
        loss = sum(-o[-1].mean() for o in outs) / len(outs)
        kl = -0.5 * (1 + logvar - mu**2 - logvar.exp()).sum()
        for j in range(5):  # official: a loop over layers and present classes
            terms = [
                (-0.5 * (1 + clv[0, j, c] - cmu[0, j, c] ** 2 - clv[0, j, c].exp())).sum()
                for c in range(K)
                if pres[0, j, c]
            ]
            kl = kl + sum(terms) / max(len(terms), 1)
        (loss + 0.05 * kl).backward()

    def our_step() -> None:
        post = enc.posterior(image, cond)
        fake = gen(cond, post).image
        out = disc(fake, cond)
        loss = sum(-o.mean() for o in out.logits) / len(out.logits)
        (loss + 0.05 * post.kl).backward()

    rows.append(
        harness.compare(
            "clvae: VAE-GAN generator step fwd+bwd (E -> G -> D, hinge + KL)",
            net_setting,
            ref_step,
            our_step,
            **timing,
        )
    )
    for r in rows[first:]:
        r["reference"] = official.REIMPLEMENTATION
    return result


PAPER_SIZES = {"size": 256, "ngf": 64, "ndf": 64}


def table(rows: list[dict[str, object]]) -> str:
    """Rows as a markdown table: times in ms, ratio, ceiling, peak RSS growth, reference."""
    head = (
        "| row | reference ms | ours ms | ratio | ceiling (ours at % of it) | peak MiB ref / ours |"
    )
    lines = [head, "|---|---|---|---|---|---|"]
    for r in rows:
        ceiling = f"{r['ceiling']:.2f}× ({100 * r['of_ceiling']:.0f}%)" if "ceiling" in r else "—"
        peak = f"{r.get('reference_peak_mib', '—')} / {r.get('ours_peak_mib', '—')}"
        lines.append(
            f"| {r['name'].removeprefix('clvae: ')} | {r['reference_s'] * 1e3:.1f} | "
            f"{r['ours_s'] * 1e3:.1f} | **{r['ratio']:.2f}×** | {ceiling} | {peak} |"
        )
    refs = sorted({str(r.get("reference", "?")) for r in rows})
    return "\n".join(lines + [""] + [f"reference: {ref}" for ref in refs])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ngf", type=int, default=16)
    ap.add_argument("--ndf", type=int, default=16)
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--iters", type=int, default=3, help="timed repeats (medians reported)")
    ap.add_argument("--threads", type=int, default=2, help="torch.set_num_threads (issue: 2)")
    ap.add_argument(
        "--paper-sizes", action="store_true", help="256², ngf = ndf = 64 (the issue-18 targets)"
    )
    ap.add_argument(
        "--official",
        metavar="PATH",
        help="checkout of endo-yuki-t/DiversifyingSMIS (else $SYNTH_OFFICIAL_DIVERSIFYINGSMIS; "
        "neither: the re-implementation)",
    )
    args = ap.parse_args()
    if args.paper_sizes:
        args.size, args.ngf, args.ndf = PAPER_SIZES["size"], PAPER_SIZES["ngf"], PAPER_SIZES["ndf"]
    torch.set_num_threads(args.threads)
    result = run(args.size, args.ngf, args.ndf, args.iters, official_root=args.official)
    print()
    print(table(result["rows"]))
    doc = {
        "benchmark": "clvae",
        "date": datetime.date.today().isoformat(),
        "machine": harness.machine("cpu"),
        "settings": {**result["settings"], "paper_sizes": args.paper_sizes},
        "rows": result["rows"],
        "variants": result["variants"],
    }
    for v in result["variants"]:
        print(f"variant: {v['name']}: {v['seconds'] * 1e3:.1f} ms")
    suffix = "-paper" if args.paper_sizes else ""
    name = f"{datetime.date.today().isoformat()}-cpu-clvae{suffix}.json"
    out = ROOT / "bench" / "results" / name
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(doc, indent=2, default=str) + "\n")
    print(f"\nwrote {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
