"""The edit recipe: the page's work as JSON that replays through the Python API.

A recipe is the input and the steps taken, nothing else; every random draw is seeded, so
:func:`replay` on the same model gives the same pixels (tested)::

    {"format": "synth.app.recipe", "version": 1,
     "input": {"size": [64, 64], "label_map": {"shape": [64, 64], "data": "<base64 uint8>"}},
     "steps": [{"op": "sample", "n": 6, "seed": 1},
               {"op": "pick", "index": 2},
               {"op": "resample_class", "classes": [3], "n": 6, "seed": 2},
               {"op": "pick", "index": 0},
               {"op": "blend", "with_index": 4, "region": {...}}]}

    import synth, json
    from synth.app import replay
    state = replay(synth.load("runs/demo/model"), json.load(open("recipe.json")))
    state.images  # [m, 3, H, W] in [-1, 1]: the last grid; state.current: the picked one

A :class:`State` is the last grid (its images and the codes that made each) and the picked
image ("current"). Steps:

``sample``          ``n`` samples of the input from the model's sampler (one forward)
``pick``            make grid image ``index`` the current one
``resample_class``  ``n`` variants of the current image, ``classes``' codes redrawn in every
                    stage from one prior draw per variant, every other code kept
``resample_scale``  ``n`` variants, the codes of pyramid levels ``scales`` redrawn (the
                    scale sampler named in the step, ``reference`` = the current codes)
``label_collage``   the current image with ``region`` turned into class ``class_id`` on norm
                    layers ``layers`` at ``intensity`` (the label-collage sampler)
``blend``           the current image with grid image ``with_index``'s features inside
                    ``region`` (the feature-blend sampler, all stages)

Every grid-making step makes its first image current. Arrays (label map, masks, regions,
uploaded images) travel as ``{"shape", "data"}``: base64 of the row-major ``uint8`` values.
"""

from __future__ import annotations

import base64
import dataclasses
import inspect
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, Literal

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from torch import Tensor

from ..condition import Condition
from ..latents import Latents
from ..parts.base import Sampler
from ..registry import get_registry

if TYPE_CHECKING:
    from ..model import SynthesisModel

__all__ = [
    "MAX_SAMPLES",
    "MAX_STEPS",
    "RECIPE_FORMAT",
    "Array",
    "InputSpec",
    "Recipe",
    "RecipeError",
    "State",
    "apply_step",
    "decode_array",
    "encode_array",
    "make_condition",
    "replay",
    "start",
]

RECIPE_FORMAT = "synth.app.recipe"
#: Most samples one request may ask for (one forward of this many images).
MAX_SAMPLES = 32
#: Most steps one recipe may hold (a request replays at most this many).
MAX_STEPS = 256


class RecipeError(ValueError):
    """A recipe or step the model cannot run; the message names the field and the fix."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Array(_Strict):
    """``uint8`` values, row-major, base64: ``shape`` ``[H, W]`` or ``[H, W, 3]``."""

    shape: list[Annotated[int, Field(ge=1, le=4096)]] = Field(min_length=2, max_length=3)
    data: str


def encode_array(a: np.ndarray | Tensor) -> dict[str, Any]:
    """``uint8`` array -> ``{"shape", "data"}`` (the recipe's form)."""
    arr = np.ascontiguousarray(np.asarray(a, dtype=np.uint8))
    return {"shape": list(arr.shape), "data": base64.b64encode(arr.tobytes()).decode("ascii")}


def decode_array(a: Array | Mapping[str, Any], what: str) -> np.ndarray:
    """``{"shape", "data"}`` -> ``uint8`` array; a :class:`RecipeError` naming ``what`` when the
    bytes do not fill the shape."""
    a = a if isinstance(a, Array) else Array.model_validate(a)
    try:
        raw = base64.b64decode(a.data, validate=True)
    except (ValueError, TypeError) as e:
        raise RecipeError(f"{what}.data is not base64: {e}") from None
    want = int(np.prod(a.shape))
    if len(raw) != want:
        raise RecipeError(
            f"{what}: {len(raw)} bytes for shape {a.shape} ({want} values); send one uint8 "
            "per value, row-major"
        )
    return np.frombuffer(raw, dtype=np.uint8).reshape(a.shape)


class InputSpec(_Strict):
    """What the user gave: a painted label map, a class, or an image (and its mask)."""

    size: tuple[Annotated[int, Field(ge=1)], Annotated[int, Field(ge=1)]]
    label_map: Array | None = None
    class_id: int | None = Field(None, ge=0)
    image: Array | None = None
    mask: Array | None = None


class SampleStep(_Strict):
    op: Literal["sample"]
    n: int = Field(6, ge=1, le=MAX_SAMPLES)
    seed: int = Field(0, ge=0, lt=2**63)


class PickStep(_Strict):
    op: Literal["pick"]
    index: int = Field(ge=0)


class ResampleClassStep(_Strict):
    op: Literal["resample_class"]
    classes: list[Annotated[int, Field(ge=0)]] = Field(min_length=1)
    n: int = Field(6, ge=1, le=MAX_SAMPLES)
    seed: int = Field(0, ge=0, lt=2**63)


class ResampleScaleStep(_Strict):
    op: Literal["resample_scale"]
    scales: list[int] = Field(min_length=1)
    n: int = Field(6, ge=1, le=MAX_SAMPLES)
    seed: int = Field(0, ge=0, lt=2**63)
    sampler: str


class LabelCollageStep(_Strict):
    op: Literal["label_collage"]
    class_id: int = Field(ge=0)
    region: Array
    layers: list[Annotated[int, Field(ge=0)]] | None = None
    intensity: float = Field(1.0, ge=0.0, le=1.0)
    sampler: str


class BlendStep(_Strict):
    op: Literal["blend"]
    with_index: int = Field(ge=0)
    region: Array
    sampler: str


Step = Annotated[
    SampleStep | PickStep | ResampleClassStep | ResampleScaleStep | LabelCollageStep | BlendStep,
    Field(discriminator="op"),
]


class Recipe(_Strict):
    """The page's work: ``input`` and ``steps`` (module docstring)."""

    format: Literal["synth.app.recipe"] = RECIPE_FORMAT
    version: Literal[1] = 1
    input: InputSpec
    steps: list[Step] = Field(default_factory=list, max_length=MAX_STEPS)

    @field_validator("steps")
    @classmethod
    def _starts_with_sample(cls, steps: list[Any]) -> list[Any]:
        if steps and steps[0].op != "sample":
            raise ValueError(f"the first step must be 'sample', got {steps[0].op!r}")
        return steps


def parse_recipe(data: Any) -> Recipe:
    """A :class:`Recipe` from JSON data; validation errors as one :class:`RecipeError`."""
    if isinstance(data, Recipe):
        return data
    try:
        return Recipe.model_validate(data)
    except ValidationError as e:
        parts = [f"{'.'.join(str(x) for x in err['loc'])}: {err['msg']}" for err in e.errors()]
        raise RecipeError("bad edit recipe: " + "; ".join(parts[:4])) from None


def parse_step(data: Any) -> Any:
    """One step from JSON data (as in :class:`Recipe`)."""
    rec = parse_recipe({"input": {"size": [1, 1]}, "steps": [{"op": "sample"}, data]})
    return rec.steps[1]


@dataclass
class State:
    """After some steps: ``cond`` (one input), the grid's ``latents`` (batch ``m``) and
    ``images [m, 3, H, W]`` in ``[-1, 1]``, and the picked ``current`` index."""

    cond: Condition
    latents: Latents | None
    images: Tensor
    current: int = 0

    def current_latents(self) -> Latents | None:
        return None if self.latents is None else self.latents[self.current]


def make_condition(model: SynthesisModel, spec: InputSpec) -> Condition:
    """The one-input Condition of ``spec`` for ``model`` (ids checked against its classes)."""
    fields = set(model.data_fields)
    k = model.generator.num_classes
    h, w = spec.size
    kw: dict[str, Any] = {"size": (h, w)}
    if "label_map" in fields:
        if spec.label_map is None:
            raise RecipeError("this model reads a label map: paint one (input.label_map)")
        ids = decode_array(spec.label_map, "input.label_map")
        if ids.shape != (h, w):
            raise RecipeError(f"input.label_map is {list(ids.shape)}; the model makes {[h, w]}")
        if k is not None and int(ids.max()) >= k:
            raise RecipeError(
                f"input.label_map has class id {int(ids.max())} but the model has {k} classes "
                f"(ids 0..{k - 1})"
            )
        kw["label_map"] = torch.from_numpy(ids.astype(np.int64))[None]
    if "class_id" in fields or ("class_weights" in fields and "label_map" not in fields):
        c = spec.class_id or 0
        if k is not None and c >= k:
            raise RecipeError(f"input.class_id = {c} but the model has {k} classes (0..{k - 1})")
        kw["class_id"] = torch.tensor([c])
    if "class_weights" in fields:
        base = kw["label_map"][0] if "label_map" in kw else torch.full((h, w), kw["class_id"][0])
        kw["class_weights"] = _one_hot(base, k or 1)
    if "image" in fields:
        if spec.image is None:
            raise RecipeError("this model reads an image: upload one (input.image)")
        img = decode_array(spec.image, "input.image")
        if img.ndim != 3 or img.shape[2] != 3:
            raise RecipeError(f"input.image has shape {list(img.shape)}; give [h, w, 3] RGB")
        t = torch.from_numpy(img.astype(np.float32)).permute(2, 0, 1)[None] / 127.5 - 1
        if "mask" in fields and spec.mask is not None:
            m = decode_array(spec.mask, "input.mask")
            if m.shape != (h, w):
                raise RecipeError(f"input.mask is {list(m.shape)}; the model makes {[h, w]}")
            mask = torch.from_numpy((m > 0).astype(np.float32))[None, None]
            kw["mask"] = mask
            if tuple(t.shape[-2:]) == (h, w):
                t = t * mask  # unknown pixels are not shown to the model
        kw["image"] = t
    if "mask" in fields and "mask" not in kw:
        kw["mask"] = torch.ones(1, 1, h, w)
    if k is not None and ({"label_map", "class_id", "class_weights"} & kw.keys()):
        kw["num_classes"] = k
    try:
        return Condition(**kw)
    except (ValueError, TypeError) as e:
        raise RecipeError(f"input: {e}") from None


def _one_hot(ids: Tensor, k: int) -> Tensor:
    """``[H, W]`` ids -> ``[1, K, H, W]`` float one-hot."""
    return torch.nn.functional.one_hot(ids.long(), k).permute(2, 0, 1)[None].float()


def _region(model_size: tuple[int, int], a: Array, what: str) -> Tensor:
    """A painted region ``[H, W]`` as ``float [H, W]`` in ``{0, 1}``."""
    r = decode_array(a, what)
    if r.shape != tuple(model_size):
        raise RecipeError(f"{what} is {list(r.shape)}; paint it at the output size {model_size}")
    if not r.any():
        raise RecipeError(f"{what} is empty: paint the region to edit first")
    return torch.from_numpy((r > 0).astype(np.float32))


def _sampler(model: SynthesisModel, name: str) -> Sampler:
    reg = getattr(model, "_registry", None) or get_registry()
    try:
        part = reg.build(name)
    except Exception as e:
        raise RecipeError(f"sampler {name!r} cannot be built here: {e}") from None
    if not isinstance(part, Sampler):
        raise RecipeError(f"{name!r} is a {part.kind}, not a sampler")
    return part


def _seeded(seed: int, device: torch.device) -> torch.Generator:
    return torch.Generator(device=device).manual_seed(int(seed))


def _default_sampler(model: SynthesisModel) -> Sampler | str:
    """The model's sampler when it needs no keywords of its own, else ``core.prior``."""
    s = model.sampler
    if s is None:
        return "core.prior"
    params = inspect.signature(s.sample).parameters.values()
    required = [
        p.name
        for p in params
        if p.kind is p.KEYWORD_ONLY and p.default is p.empty and p.name != "generator"
    ]
    return "core.prior" if required else s


def start(model: SynthesisModel, spec: InputSpec | Mapping[str, Any]) -> Condition:
    """The Condition of a recipe's input (a :class:`RecipeError` for a bad one)."""
    if not isinstance(spec, InputSpec):
        try:
            spec = InputSpec.model_validate(spec)
        except ValidationError as e:
            raise RecipeError(f"bad input: {e.errors()[0]['msg']}") from None
    return make_condition(model, spec)


def apply_step(model: SynthesisModel, state: State | None, cond: Condition, step: Any) -> State:
    """Run one step on ``state`` (``None`` before the first ``sample``); returns a new state."""
    device = next(iter(model.parameters()), torch.empty(0)).device
    cond = cond.to(device)
    if step.op == "sample":
        g = _seeded(step.seed, device)
        out = model.sample(cond, step.n, sampler=_default_sampler(model), generator=g)
        return State(cond, out.latents, out.image.float().cpu(), 0)
    if state is None:
        raise RecipeError(f"step {step.op!r} needs a sample first")
    if step.op == "pick":
        if step.index >= state.images.shape[0]:
            raise RecipeError(
                f"pick index {step.index}: the grid has {state.images.shape[0]} images"
            )
        return dataclasses.replace(state, current=step.index)
    cur = state.current_latents()
    if cur is None:
        raise RecipeError(f"{step.op} edits the codes of a sample, but this model has none")
    cur = cur.to(device)
    if step.op == "resample_class":
        return _resample_class(model, state, cur, step, device)
    if step.op == "resample_scale":
        g = _seeded(step.seed, device)
        out = model.sample(
            cond, step.n, sampler=_sampler(model, step.sampler), generator=g,
            scales=list(step.scales), reference=cur,
        )  # fmt: skip
        return State(cond, out.latents, out.image.float().cpu(), 0)
    if step.op == "label_collage":
        return _label_collage(model, state, cur, step, device)
    if step.op == "blend":
        if step.with_index >= state.images.shape[0] or step.with_index == state.current:
            raise RecipeError(
                f"blend with_index {step.with_index}: pick another image of the grid "
                f"(0..{state.images.shape[0] - 1}, not the current {state.current})"
            )
        region = _region(tuple(state.images.shape[-2:]), step.region, "blend.region").to(device)
        other = state.latents[step.with_index].to(device)
        out = model.sample(
            cond, 1, sampler=_sampler(model, step.sampler),
            masks=region[None, None], references=[other], target=cur,
        )  # fmt: skip
        return State(cond, out.latents, out.image.float().cpu(), 0)
    raise RecipeError(f"unknown step {step.op!r}")  # pragma: no cover - pydantic refuses it


def _resample_class(
    model: SynthesisModel, state: State, cur: Latents, step: Any, device: torch.device
) -> State:
    """Redraw ``step.classes``' codes in every stage: ``class_codes[s][:, c]`` from one prior
    draw per variant, everything else the current image's."""
    if not cur.class_codes:
        raise RecipeError("resample_class: this model's codes have no per-class codes")
    k = cur.class_codes[0].shape[1]
    bad = [c for c in step.classes if c >= k]
    if bad:
        raise RecipeError(f"resample_class: classes {bad} do not exist (0..{k - 1})")
    cond_n = state.cond.to(device).repeat_interleave(step.n)
    fresh = model.injector.prior(cond_n, _seeded(step.seed, device))
    chosen = torch.zeros(k, dtype=torch.bool, device=device)
    chosen[list(step.classes)] = True
    keep = cur.repeat_interleave(step.n)
    codes = [
        torch.where(chosen[None, :, None], new.to(old.dtype), old)
        for old, new in zip(keep.class_codes, fresh.class_codes, strict=True)
    ]
    latents = dataclasses.replace(keep, class_codes=codes, kl=None)
    out = model.generate(cond_n, latents)
    return State(state.cond, latents, out.image.float().cpu(), 0)


def _label_collage(
    model: SynthesisModel, state: State, cur: Latents, step: Any, device: torch.device
) -> State:
    """The class map of the input with ``region`` moved to ``class_id`` at ``intensity``
    (``W = (1 - α·r)·W_input + α·r·onehot(class_id)``), read by layers ``layers`` only."""
    cond = state.cond.to(device)
    k = model.generator.num_classes
    if k is None or step.class_id >= k:
        raise RecipeError(
            f"label_collage: class {step.class_id} does not exist (0..{(k or 1) - 1})"
        )
    size = tuple(state.images.shape[-2:])
    region = _region(size, step.region, "label_collage.region").to(device)
    if cond.class_weights is not None:
        base = torch.nn.functional.interpolate(cond.class_weights.float(), size=size, mode="area")
    elif cond.label_map is not None:
        base = _one_hot(cond.label_map[0], k).to(device)
        base = torch.nn.functional.interpolate(base, size=size, mode="nearest")
    elif cond.class_id is not None:
        base = _one_hot(torch.full(size, int(cond.class_id[0]), device=device), k)
    else:
        raise RecipeError("label_collage needs a class input (label map or class)")
    target = _one_hot(torch.full(size, step.class_id, device=device), k)
    a = step.intensity * region[None, None]
    weights = (1 - a) * base + a * target
    out = model.sample(
        cond, 1, sampler=_sampler(model, step.sampler), class_weights=weights,
        layers=None if step.layers is None else list(step.layers), intensity=1.0, latents=cur,
    )  # fmt: skip
    return State(state.cond, out.latents, out.image.float().cpu(), 0)


def replay(model: SynthesisModel, recipe: Recipe | Mapping[str, Any]) -> State:
    """Run a recipe from its input: the same model gives the same pixels as the page showed."""
    rec = parse_recipe(recipe)
    if not rec.steps:
        raise RecipeError("the recipe has no steps: it starts with a 'sample' step")
    cond = make_condition(model, rec.input)
    state: State | None = None
    for step in rec.steps:
        state = apply_step(model, state, cond, step)
    assert state is not None
    return state


def steps_of(steps: Sequence[Any]) -> list[dict[str, Any]]:
    """Steps as JSON data."""
    return [s.model_dump(mode="json") for s in steps]
