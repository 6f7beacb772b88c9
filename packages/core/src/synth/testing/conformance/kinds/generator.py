"""The harness of generators."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

from torch import Tensor, nn

from ....config import RUNTIME_ARGS, normalize_spec, slot_fields
from ....latents import LATENT_FIELDS, Latents
from ....outputs import SynthesisOutput
from ....parts.base import Part
from ...inputs import make_condition, make_latents
from ..constants import IMAGE_BOUND
from ..harness import _Harness, _num_classes, _requirements
from ..tensors import _flatten, _nonfinite


class _Generator(_Harness):
    kind = "generator"
    keys = frozenset({"cond", "latents"})

    def size(self, part):
        m = max(int(getattr(part, "size_multiple", 1) or 1), 1)
        return tuple(-(-s // m) * m for s in self.s.size)  # type: ignore[return-value]

    def declared(self, part):
        return self._all_requirements(part)

    def _all_requirements(self, part) -> frozenset[str]:
        """The generator's own requirements plus its slots' (recursively, as the composer)."""
        reg = self.s.registry

        def slots(cls: type[Part], spec: Mapping[str, Any]) -> set[str]:
            out: set[str] = set()
            for key in slot_fields(cls.Config):
                value = spec.get(key)
                if value is None:
                    continue
                sub = normalize_spec(value)
                sub_cls = reg.resolve(sub["type"])
                out |= set(sub_cls.requirements(None)) | slots(sub_cls, sub)
            return out

        return frozenset(set(_requirements(part)) | slots(type(part), part.config.model_dump()))

    def defaults(self, part, missing, g):
        reqs = self._all_requirements(part)
        size = self.size(part)
        k = _num_classes(part)
        cond = make_condition(
            reqs, batch_size=self.s.batch_size, size=size, num_classes=k, generator=g
        )
        rt = {key: v for key, v in part.runtime_args().items() if key in RUNTIME_ARGS}
        needed = set(reqs) & set(LATENT_FIELDS)
        latents = Latents()
        for inj_name in ("core.gaussian", "core.spatial_noise"):
            if not needed or inj_name not in self.s.registry:
                continue
            try:
                inj = self.s.registry.build(inj_name, **rt)
                take = set(type(inj).provided(inj.config)) & needed
                if not take:
                    continue
                drawn = inj.prior(cond, g)
            except Exception:
                continue
            for f in take:
                if getattr(drawn, f) is not None:
                    setattr(latents, f, getattr(drawn, f))
                    needed.discard(f)
        if needed:
            synth_lat = make_latents(
                needed,
                batch_size=self.s.batch_size,
                size=size,
                z_dim=int(rt.get("z_dim") or 8),
                style_dim=int(rt.get("style_dim") or 8),
                num_stages=int(rt.get("num_stages") or 1),
                num_classes=k,
                code_dim=int(rt.get("code_dim") or 8),
                channels=int(rt.get("channels") or 8),
                generator=g,
            )
            for f in needed:
                setattr(latents, f, getattr(synth_lat, f))
        return {"cond": cond, "latents": latents}

    def run(self, part, inp, seed):
        part.check_condition(inp["cond"])
        return part(inp["cond"], inp.get("latents"), return_features=True)

    def validate(self, part, inp, out):
        if not isinstance(out, SynthesisOutput):
            return [
                (
                    f"forward returned {type(out).__name__}, not synth.SynthesisOutput",
                    "return SynthesisOutput(image=..., features=...)",
                )
            ]
        want = _Expected(part, self.s.batch_size, *inp["cond"].size)
        return [problem for check in _OUTPUT_CHECKS for problem in check(want, out)]

    def compile_cases(self, part):
        inp = self.inputs(part)
        return [
            (
                "forward(cond, latents, return_features=True)",
                lambda cond, latents: part(cond, latents, return_features=True),
                lambda: (inp["cond"], inp.get("latents")),
                True,
            )
        ]


# --------------------------------------------------------------------------- output checks

#: (what is wrong, how to fix it)
_Problem = tuple[str, str]


class _Expected(NamedTuple):
    """What a generator's output must look like, from its class and the condition."""

    part: Any
    b: int
    h: int
    w: int

    @property
    def channels(self) -> int:
        return type(self.part).image_channels

    @property
    def stage_channels(self) -> list[int]:
        return list(getattr(self.part, "stage_channels", []) or [])

    @property
    def stage_scales(self) -> list[int]:
        return list(getattr(self.part, "stage_scales", []) or [])


def _check_image(want: _Expected, out: SynthesisOutput) -> list[_Problem]:
    """``image`` is ``[B, image_channels, H, W]``, finite, in ``[-1, 1]``."""
    img = out.image
    shape = (want.b, want.channels, want.h, want.w)
    if not isinstance(img, Tensor) or tuple(img.shape) != shape:
        got = tuple(img.shape) if isinstance(img, Tensor) else type(img).__name__
        return [
            (
                f"image is {got}, expected {shape}",
                "return image: [B, image_channels, H, W] at Condition.size",
            )
        ]
    if _nonfinite({"image": img}):
        return [("image has NaN/Inf values", "check the generator's arithmetic")]
    peak = float(img.detach().abs().max())
    if peak > IMAGE_BOUND:
        return [
            (
                f"image reaches {peak:.3g}, outside [-1, 1]",
                "end the generator with tanh (images are in [-1, 1])",
            )
        ]
    return []


def _check_stages(want: _Expected, out: SynthesisOutput) -> list[_Problem]:
    """``stages`` is an ``nn.ModuleList`` with one entry per ``stage_channels`` entry."""
    stages, sc = getattr(want.part, "stages", None), want.stage_channels
    if not isinstance(stages, nn.ModuleList):
        return [
            (
                "the generator has no `stages` nn.ModuleList",
                "keep the stages in self.stages = nn.ModuleList([...])",
            )
        ]
    if len(stages) != len(sc):
        return [
            (
                f"len(stages) = {len(stages)} but len(stage_channels) = {len(sc)}",
                "stage i of self.stages produces features[i]: one entry per stage",
            )
        ]
    return []


def _check_stage_scales(want: _Expected, out: SynthesisOutput) -> list[_Problem]:
    """One ``stage_scales`` entry per ``stage_channels`` entry."""
    ss, sc = want.stage_scales, want.stage_channels
    if len(ss) != len(sc):
        return [
            (
                f"stage_scales has {len(ss)} entries, stage_channels {len(sc)}",
                "give one scale and one width per stage",
            )
        ]
    return []


def _check_features(want: _Expected, out: SynthesisOutput) -> list[_Problem]:
    """One finite feature map ``[B, stage_channels[i], H/s_i, W/s_i]`` per stage."""
    feats, sc, ss = out.features, want.stage_channels, want.stage_scales
    if not isinstance(feats, list):
        return [
            (
                "return_features=True gave no feature list",
                "return features=[stage outputs] when return_features is set",
            )
        ]
    probs: list[_Problem] = []
    if len(feats) != len(sc):
        probs.append(
            (f"{len(feats)} features for {len(sc)} stages", "return one feature map per stage")
        )
    for i, (f, c, s) in enumerate(zip(feats, sc, ss)):
        shape = (want.b, c, want.h // s, want.w // s)
        if not isinstance(f, Tensor) or tuple(f.shape) != shape:
            got = tuple(f.shape) if isinstance(f, Tensor) else type(f).__name__
            probs.append(
                (
                    f"features[{i}] is {got}, expected {shape} from "
                    f"stage_channels[{i}]={c}, stage_scales[{i}]={s}",
                    "make stage_channels/stage_scales describe the stage outputs",
                )
            )
    bad = _nonfinite(_flatten(feats, "features"))
    if bad:
        probs.append((f"NaN/Inf in {bad}", "check the stages' arithmetic"))
    return probs


def _check_pyramid(want: _Expected, out: SynthesisOutput) -> list[_Problem]:
    """A pyramid exactly when ``has_pyramid``: RGB levels, coarse to fine, ending at H×W."""
    pyr = out.pyramid
    if not type(want.part).has_pyramid:
        if pyr is None:
            return []
        return [
            (
                "the output has a pyramid but the class says has_pyramid = False",
                "set has_pyramid = True so the composer knows",
            )
        ]
    if not isinstance(pyr, list) or not pyr:
        return [
            (
                "has_pyramid is True but the output has no pyramid",
                "return pyramid=[per-scale RGB, coarse to fine]",
            )
        ]
    probs: list[_Problem] = []
    for i, p in enumerate(pyr):
        if not isinstance(p, Tensor) or p.dim() != 4 or p.shape[:2] != (want.b, want.channels):
            got = tuple(p.shape) if isinstance(p, Tensor) else type(p).__name__
            probs.append(
                (f"pyramid[{i}] is {got}", f"each pyramid level is [B, {want.channels}, h, w]")
            )
    if isinstance(pyr[-1], Tensor) and tuple(pyr[-1].shape[-2:]) != (want.h, want.w):
        probs.append(
            (
                f"the finest pyramid level is {tuple(pyr[-1].shape[-2:])}, "
                f"not the output size {(want.h, want.w)}",
                "order the pyramid coarse to fine, ending at the output size",
            )
        )
    return probs


#: The checks of a generator's output, in the order their problems are reported.
_OUTPUT_CHECKS: tuple[Callable[[_Expected, SynthesisOutput], list[_Problem]], ...] = (
    _check_image,
    _check_stages,
    _check_stage_scales,
    _check_features,
    _check_pyramid,
)
