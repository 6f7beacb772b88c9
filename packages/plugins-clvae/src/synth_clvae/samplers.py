"""CLVAE's samplers (Endo & Kanamori 2021, §4.4): prior sampling, style-guided synthesis,
object editing and material editing. Each returns ``image [B·n, 3, H, W]`` ordered ``(b n)``
and the ``latents`` (``z`` and per-stage ``class_codes``) that made it.

Each takes its inputs as explicit, typed keywords after the shared head
``sample(model, cond, n, *, generator=None, ...)``; calling a sampler (or
``model.sample(..., sampler=...)``) checks them against that signature."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import torch
from einops import rearrange, repeat
from pydantic import Field
from torch import Tensor

import synth
from synth.errors import CapabilityError

if TYPE_CHECKING:
    from synth.model import SynthesisModel

__all__ = ["MaterialEdit", "ObjectEdit", "Prior", "StyleGuided", "tiny_clvae_model"]


def tiny_clvae_model(seed: int = 0, num_classes: int = 4, size: int = 64) -> SynthesisModel:
    """A small composed CLVAE model (ngf 4, K classes, ``size`` px) in eval mode, for checks."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = synth.compose(
            {
                "generator": {
                    "type": "clvae.clvae_generator",
                    "num_classes": num_classes,
                    "ngf": 4,
                    "z_dim": 8,
                    "code_dim": 4,
                    "crop_size": size,
                    "norm": {"type": "clvae.spade", "hidden": 8},
                    "cse": {"type": "clvae.cse", "hidden": 8},
                },
                "injector": {
                    "type": "clvae.class_layer_encoder",
                    "ndf": 4,
                    "input_size": size,
                    "num_layers": 5,
                },
            }
        )
    return model.eval()


def _example(self: synth.Sampler, batch_size: int, size: tuple[int, int], generator) -> dict:
    seed = int(torch.randint(0, 2**31 - 1, (1,), generator=generator))
    model = tiny_clvae_model(seed, size=64)
    cond = synth.testing.make_condition(
        {"label_map"}, batch_size=batch_size, size=64, num_classes=4, generator=generator
    )
    image = torch.tanh(torch.randn(batch_size, 3, 64, 64, generator=generator))
    keywords = self._example_keywords(cond, image)
    return {"model": model, "cond": cond, "n": 2, "kwargs": keywords}


def _encoder(model: SynthesisModel, who: str):
    inj = model.injector
    if inj is None or not hasattr(inj, "encode") or not hasattr(inj, "to_stage_codes"):
        raise CapabilityError(
            f"{who} needs a class- and layer-wise encoder as the model's injector "
            "(clvae.class_layer_encoder); this model has "
            f"{type(inj).__name__ if inj is not None else 'none'}"
        )
    return inj


def _present(labels: Tensor, k: int) -> Tensor:
    """``[B, K]`` bool: class occurs in ``labels [B, H, W]``."""
    flat = rearrange(labels, "b h w -> b (h w)")
    counts = torch.zeros(labels.shape[0], k, dtype=torch.int64, device=labels.device)
    return counts.scatter_add(1, flat, torch.ones_like(flat)) > 0


def _run(model: SynthesisModel, cond_n: synth.Condition, z: Tensor, codes: Tensor) -> Any:
    """Generate from ``z [B·n, Z]`` and layer codes ``[B·n, 5, K, D]``."""
    inj = model.injector
    latents = synth.Latents(z=z, class_codes=inj.to_stage_codes(codes))
    image = model.generator(cond_n, latents).image
    return synth.SynthesisOutput(image=image, latents=latents)


class _Base(synth.Sampler):
    def example_inputs(
        self, *, batch_size: int, size: tuple[int, int], generator: torch.Generator
    ) -> dict[str, Any]:
        """A tiny CLVAE model, a 4-class label map and the sampler's keyword arguments."""
        import synth.testing  # noqa: F401

        return _example(self, batch_size, size, generator)

    def _example_keywords(self, cond: synth.Condition, image: Tensor) -> dict[str, Any]:
        return {}

    def _source_codes(
        self,
        model: SynthesisModel,
        cond: synth.Condition,
        image: Tensor | None,
        layer_codes: tuple[Tensor, Tensor] | None,
        who: str,
    ) -> tuple[Tensor, Tensor]:
        """``(z [B, Z], codes [B, 5, K, D])``: posterior means of ``image``, or
        ``layer_codes``."""
        inj = _encoder(model, who)
        if image is not None:
            p = inj.encode(image, cond)
            return p["mu"], p["class_mu"]
        if layer_codes is not None:
            z, codes = layer_codes
            return z, codes
        raise ValueError(
            f"{who} edits the codes of a source: pass image=[B, 3, H, W] (encoded with the "
            "model's encoder) or layer_codes=(z [B, Z], codes [B, 5, K, D])"
        )


class Prior(_Base):
    """Prior sampling (eqs. 3 and 11): ``z_1`` and every class code of every layer from N(0, I).

    Draws them with the injector's prior from ``generator``; ``n`` samples per input.
    """

    def sample(
        self,
        model: SynthesisModel,
        cond: synth.Condition,
        n: int,
        *,
        generator: torch.Generator | None = None,
    ) -> synth.SynthesisOutput:
        """``image [B·n, 3, H, W]`` ordered ``(b n)`` and its ``latents``."""
        if model.injector is None:
            raise CapabilityError("clvae.prior needs an injector to draw codes from")
        cond_n = cond.repeat_interleave(n)
        latents = model.injector.prior(cond_n, generator)
        image = model.generator(cond_n, latents).image
        return synth.SynthesisOutput(image=image, latents=latents)


class StyleGuided(_Base):
    """Style-guided synthesis (§4.4.1): a reference image's styles on a source label map.

    Keywords (both required): ``reference [B, 3, H, W]`` (image ``I_t``) and
    ``reference_labels [B, H, W]`` (its map ``M_t``). The encoder's posterior means
    ``μ_{l,c}(I_t)`` are the codes of the classes in ``C(M_s) ∩ C(M_t)``; the other classes'
    codes are drawn from ``N(0, I)`` (a new draw for each of the ``n`` samples). ``z_1`` is the reference's ``μ`` when
    ``reference_global`` (the official test mode), a prior draw otherwise.
    """

    class Config(synth.PartConfig):
        reference_global: bool = True

    def _example_keywords(self, cond, image):
        # the reference lacks class 3: its codes come from the prior
        return {"reference": image.flip(-1), "reference_labels": cond.label_map.clamp(max=2)}

    def sample(
        self,
        model: SynthesisModel,
        cond: synth.Condition,
        n: int,
        *,
        generator: torch.Generator | None = None,
        reference: Tensor,
        reference_labels: Tensor,
    ) -> synth.SynthesisOutput:
        """``image [B·n, 3, H, W]``; codes of shared classes are the reference's means."""
        inj = _encoder(model, "clvae.style_guided")
        ref_cond = synth.Condition(label_map=reference_labels, num_classes=cond.num_classes)
        p = inj.encode(reference, ref_cond)
        k = p["class_mu"].shape[2]
        shared = _present(cond.label_map, k) & _present(reference_labels, k)  # [B, K]
        cond_n = cond.repeat_interleave(n)
        prior = inj.prior(cond_n, generator)
        rand_codes = torch.randn(
            cond_n.batch_size, *p["class_mu"].shape[1:], generator=generator, device=cond.device
        )
        mask = repeat(shared, "b k -> (b n) 1 k 1", n=n)
        codes = torch.where(mask, p["class_mu"].repeat_interleave(n, 0), rand_codes)
        z = p["mu"].repeat_interleave(n, 0) if self.config.reference_global else prior.z
        return _run(model, cond_n, z, codes)


class ObjectEdit(_Base):
    """Object editing (§4.4.2): resample or set the codes of chosen classes, keep the rest.

    Keywords: ``classes`` (required: the class ids to edit), the source as ``image [B, 3,
    H, W]`` (codes = the encoder's posterior means) or ``layer_codes=(z, codes [B, 5, K, D])``,
    and optionally ``codes [len(classes), 5, D]`` to set (otherwise each of the ``n`` samples
    draws them from ``N(0, I)``). With ``copy_back`` (and ``image``), every pixel whose label is
    not an edited class is copied from ``image``, so it is bit-identical to the source photo.
    """

    class Config(synth.PartConfig):
        copy_back: bool = Field(False, description="copy the source pixels outside the edit")

    def _example_keywords(self, cond, image):
        return {"image": image, "classes": [1]}

    def sample(
        self,
        model: SynthesisModel,
        cond: synth.Condition,
        n: int,
        *,
        generator: torch.Generator | None = None,
        classes: Sequence[int],
        image: Tensor | None = None,
        layer_codes: tuple[Tensor, Tensor] | None = None,
        codes: Tensor | None = None,
    ) -> synth.SynthesisOutput:
        """``image [B·n, 3, H, W]`` with only the chosen classes' codes changed."""
        z, src = self._source_codes(model, cond, image, layer_codes, "clvae.object_edit")
        k = src.shape[2]
        edit = torch.as_tensor(list(classes), dtype=torch.long, device=src.device)
        chosen = torch.zeros(k, dtype=torch.bool, device=src.device).index_fill(0, edit, True)
        src_n = src.repeat_interleave(n, 0)
        if codes is None:
            fresh = torch.randn(src_n.shape, generator=generator, device=src.device)
        else:
            new = torch.as_tensor(codes, dtype=src.dtype, device=src.device)
            fresh = torch.zeros_like(src_n)
            fresh[:, :, edit] = rearrange(new, "c l d -> 1 l c d")
        mixed = torch.where(rearrange(chosen, "k -> 1 1 k 1"), fresh.to(src.dtype), src_n)
        cond_n = cond.repeat_interleave(n)
        out = _run(model, cond_n, z.repeat_interleave(n, 0), mixed)
        if self.config.copy_back:
            if image is None:
                raise ValueError("clvae.object_edit with copy_back needs the source image=...")
            region = chosen[cond_n.label_map].unsqueeze(1)  # [B·n, 1, H, W]
            src_img = image.repeat_interleave(n, 0).to(out.image.dtype)
            out.image = torch.where(region, out.image, src_img)
        return out


class MaterialEdit(_Base):
    """Material editing (§4.4.3): move one layer's code of one class along a direction.

    Keywords: ``class_id`` and ``layer`` (required; encoder layer 0..4: shallow layers change
    local texture, deep ones the global colour), the source (``image`` or ``layer_codes``, as
    :class:`ObjectEdit`) and optionally ``direction [D]`` (default: a random unit vector from
    ``generator``). Sample ``j`` of ``n`` uses ``codes[l, c] + t_j·direction`` with ``t`` evenly
    spaced in ``[-scale, scale]``.
    """

    class Config(synth.PartConfig):
        scale: float = Field(3.0, gt=0)

    def _example_keywords(self, cond, image):
        return {"image": image, "class_id": 1, "layer": 2}

    def sample(
        self,
        model: SynthesisModel,
        cond: synth.Condition,
        n: int,
        *,
        generator: torch.Generator | None = None,
        class_id: int,
        layer: int,
        image: Tensor | None = None,
        layer_codes: tuple[Tensor, Tensor] | None = None,
        direction: Tensor | None = None,
    ) -> synth.SynthesisOutput:
        """``image [B·n, 3, H, W]``: a walk of one class's codes at one layer."""
        z, src = self._source_codes(model, cond, image, layer_codes, "clvae.material_edit")
        b, layers, k, d = src.shape
        if direction is None:
            direction = torch.randn(d, generator=generator, device=src.device)
            direction = direction / direction.norm()
        direction = torch.as_tensor(direction, dtype=src.dtype, device=src.device)
        s = self.config.scale
        t = torch.linspace(-s, s, n, device=src.device, dtype=src.dtype).repeat(b)  # (b n)
        onehot = torch.zeros(layers, k, 1, dtype=src.dtype, device=src.device)
        onehot[int(layer), int(class_id)] = 1
        codes = src.repeat_interleave(n, 0) + rearrange(t, "m -> m 1 1 1") * onehot * direction
        return _run(model, cond.repeat_interleave(n), z.repeat_interleave(n, 0), codes)
