"""What the editor offers for one model, read from its parts (DESIGN §9).

:func:`capabilities` looks at the composed model, never at its recipe name:

==================  ========================================================================
edit                offered when
==================  ========================================================================
``sample``          always: ``n`` prior samples of the input, one forward
``resample_class``  the injector's prior fills ``Latents.class_codes`` (one ``[B, K, D]`` per
                    stage): one class's codes are redrawn in every stage, the others kept
``resample_scale``  the generator has a pyramid (``has_pyramid``) and the prior fills
                    per-scale ``Latents.styles``, and a registered sampler takes ``scales`` and
                    ``reference`` (e.g. a nested-scale scale editor)
``label_collage``   some conditioning blocks of the generator read ``Condition.class_weights``
                    (probed: the block's output changes when only the class map does), and a
                    registered sampler takes ``class_weights``, ``layers``, ``intensity`` and
                    ``latents``; the layers are those blocks, in forward order
``blend``           the generator keeps its stages in ``stages`` (DESIGN §3), the model has an
                    injector (two samples to blend), and a registered sampler takes ``masks``,
                    ``references`` and ``target``
==================  ========================================================================

Samplers are found by the keywords of their ``sample`` signature (DESIGN §3: sampler keywords
are explicit and typed), so core names no plugin: whichever installed plugin provides the
sampler is used, and an edit whose sampler is missing is shown as unavailable with the reason.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor, nn

from ..condition import Condition
from ..context import Context
from ..parts.base import ConditioningBlock, Sampler
from ..registry import Registry, get_registry

if TYPE_CHECKING:
    from ..model import SynthesisModel

__all__ = [
    "SAMPLER_KEYWORDS",
    "Capabilities",
    "Edit",
    "capabilities",
    "class_weight_blocks",
    "find_sampler",
    "probe_condition",
]

#: The keywords a sampler's ``sample`` must take to implement each edit.
SAMPLER_KEYWORDS: dict[str, frozenset[str]] = {
    "resample_scale": frozenset({"scales", "reference"}),
    "label_collage": frozenset({"class_weights", "layers", "intensity", "latents"}),
    "blend": frozenset({"masks", "references", "target"}),
}


@dataclass
class Edit:
    """One edit of the page: whether it is offered, why not, and what it needs.

    ``sampler``: the registered sampler that carries it out (``None`` for edits done on the
    latents directly); ``count``: classes (``resample_class``), pyramid levels
    (``resample_scale``), class-map layers (``label_collage``) or stages (``blend``).
    """

    offered: bool
    why: str = ""
    sampler: str | None = None
    count: int = 0

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass
class Capabilities:
    """What the page shows for one model.

    ``input``: what the user gives: ``"label_map"`` (paint), ``"class_id"`` (pick a class;
    painting marks regions for edits only) or ``"image"`` (upload, with a drawn ``mask`` when
    the model reads one). ``size``: the output ``(H, W)`` (canvas and region size);
    ``image_size``: the input image's ``(h, w)`` for image-conditioned models.
    """

    input: str
    fields: list[str]
    num_classes: int | None
    class_names: list[str]
    size: tuple[int, int]
    image_size: tuple[int, int] | None
    mask: bool
    edits: dict[str, Edit] = field(default_factory=dict)

    def offers(self, edit: str) -> bool:
        return edit in self.edits and self.edits[edit].offered

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready (the page's ``/api/info``)."""
        out = dataclasses.asdict(self)
        out["edits"] = {k: v.as_dict() for k, v in self.edits.items()}
        return out


def _keywords(cls: type) -> frozenset[str]:
    """The keyword parameters of ``cls.sample`` after the shared head."""
    params = inspect.signature(cls.sample).parameters
    return frozenset(n for n in params if n not in ("self", "model", "cond", "n", "generator"))


def find_sampler(edit: str, registry: Registry | None = None) -> str | None:
    """The first registered sampler (by name) whose ``sample`` takes the keywords of ``edit``
    (:data:`SAMPLER_KEYWORDS`); ``None`` when no installed plugin has one. Samplers that
    fail to import are skipped (a broken plugin only loses its own edits)."""
    reg = registry or get_registry()
    want = SAMPLER_KEYWORDS[edit]
    for name in sorted(reg.list(kind="sampler")):
        try:
            cls = reg.resolve(name)
        except Exception:
            continue
        if isinstance(cls, type) and issubclass(cls, Sampler) and want <= _keywords(cls):
            return name
    return None


def _input_kind(fields: Iterable[str]) -> str:
    f = set(fields)
    if "label_map" in f:
        return "label_map"
    if "image" in f:
        return "image"
    if "class_id" in f or "class_weights" in f:
        return "class_id"
    return "none"


def probe_condition(model: SynthesisModel, size: tuple[int, int]) -> Condition:
    """A valid one-input Condition for ``model`` at ``size`` (zeros / class 0 / grey image,
    fully known mask): what :func:`capabilities` runs the model on."""
    fields = set(model.data_fields)
    k = model.generator.num_classes
    h, w = size
    kw: dict[str, Any] = {"size": (h, w)}
    if "label_map" in fields:
        kw["label_map"] = torch.zeros(1, h, w, dtype=torch.long)
    if "class_id" in fields or ("class_weights" in fields and "label_map" not in fields):
        kw["class_id"] = torch.zeros(1, dtype=torch.long)
    if "class_weights" in fields:
        kw["class_weights"] = _one_hot_map(0, k or 1, (h, w))
    if "image" in fields:
        ih, iw = _image_size(model, size)
        kw["image"] = torch.zeros(1, model.generator.image_channels, ih, iw)
    if "mask" in fields:
        kw["mask"] = torch.ones(1, 1, h, w)
    if "instance_map" in fields:
        kw["instance_map"] = torch.zeros(1, h, w, dtype=torch.long)
    if k is not None and ({"label_map", "class_id", "class_weights"} & kw.keys()):
        kw["num_classes"] = k
    return Condition(**kw)


def _one_hot_map(cls: int, k: int, size: tuple[int, int]) -> Tensor:
    w = torch.zeros(1, k, *size)
    w[:, cls] = 1
    return w


def _image_size(model: SynthesisModel, size: tuple[int, int]) -> tuple[int, int]:
    """The input image size that makes an output of ``size``: ``size / factor`` for a generator
    that fixes its output from its input (super-resolution), else ``size``."""
    out = model.generator.output_size((1, 1))
    if out is None:
        return size
    return (max(1, size[0] // int(out[0])), max(1, size[1] // int(out[1])))


def class_weight_blocks(model: SynthesisModel, cond: Condition) -> list[str]:
    """Names of the generator's conditioning blocks that read ``Condition.class_weights``,
    in forward (registration) order.

    Probed, not declared: one forward records each block's input, then each block runs on it
    once more with a uniform class map given as ``class_weights`` (nothing else changed); a
    block whose output has a non-zero gradient with respect to that map reads it. A gradient,
    not a comparison of two maps, so a freshly initialised model (every class's γ equal)
    counts too. Needs ``num_classes >= 2``.
    """
    k = model.generator.num_classes
    if k is None or k < 2:
        return []
    blocks = [
        (name, m) for name, m in model.generator.named_modules() if isinstance(m, ConditioningBlock)
    ]
    seen: dict[str, tuple[Tensor, Context]] = {}

    def keep(name: str):
        def hook(module: nn.Module, args: tuple[Any, ...]) -> None:
            if name not in seen and len(args) >= 2 and isinstance(args[1], Context):
                seen[name] = (args[0], args[1])

        return hook

    handles = [m.register_forward_pre_hook(keep(n)) for n, m in blocks]
    try:
        with torch.no_grad():
            model.generate(cond, generator=torch.Generator().manual_seed(0))
    finally:
        for h in handles:
            h.remove()
    found = []
    for name, m in blocks:
        if name not in seen:
            continue
        x, ctx = seen[name]
        size = tuple(cond.size) if cond.size is not None else tuple(x.shape[-2:])
        w = torch.full((x.shape[0], k, *size), 1.0 / k, device=x.device, requires_grad=True)
        c_cond = dataclasses.replace(ctx.cond, class_weights=w, num_classes=k, check=False)
        with torch.enable_grad():
            try:
                y = m(x.detach(), Context(c_cond, ctx.latents, ctx.stage))
            except (ValueError, TypeError, RuntimeError):  # a block that cannot take a map
                continue
            if not isinstance(y, Tensor) or not y.requires_grad:
                continue
            weights = torch.randn(y.shape, generator=torch.Generator().manual_seed(1))
            (grad,) = torch.autograd.grad((y * weights.to(y)).sum(), w, allow_unused=True)
        if grad is not None and bool(grad.abs().sum() > 0):
            found.append(name)
    return found


def capabilities(
    model: SynthesisModel,
    *,
    size: tuple[int, int] = (64, 64),
    class_names: list[str] | None = None,
    registry: Registry | None = None,
) -> Capabilities:
    """What the editor offers for ``model`` at output ``size`` (see the module docstring).

    Runs the model a few times on a probe input (one image each, in eval mode; the model's
    train/eval mode is restored): a model that cannot make ``size`` is a ``ValueError`` from
    its own checks, raised here, before the page opens.
    """
    was_training = model.training
    model.eval()  # the probes must not move batch-norm running statistics
    try:
        return _capabilities(model, size, class_names, registry)
    finally:
        model.train(was_training)


def _capabilities(
    model: SynthesisModel,
    size: tuple[int, int],
    class_names: list[str] | None,
    registry: Registry | None,
) -> Capabilities:
    reg = registry or getattr(model, "_registry", None) or get_registry()
    fields = sorted(model.data_fields)
    kind = _input_kind(fields)
    cond = probe_condition(model, size)
    g = torch.Generator().manual_seed(0)
    out = model.generate(cond, generator=g)
    out_size = (int(out.image.shape[-2]), int(out.image.shape[-1]))
    k = model.generator.num_classes
    names = list(class_names or [])
    if k is not None:
        if names and len(names) != k:
            raise ValueError(
                f"class_names has {len(names)} names but the model has {k} classes; give one "
                "name per class"
            )
        names = names or [f"class {i}" for i in range(k)]
    prior = out.latents
    edits: dict[str, Edit] = {"sample": Edit(True, "n prior samples in one forward")}

    codes = prior.class_codes if prior is not None else None
    if codes:
        edits["resample_class"] = Edit(
            True, "the prior fills per-class codes (Latents.class_codes)", None, int(k or 0)
        )
    else:
        edits["resample_class"] = Edit(False, "the model has no per-class codes")

    styles = prior.styles if prior is not None else None
    if not (model.generator.has_pyramid and styles):
        edits["resample_scale"] = Edit(False, "the model has no pyramid with per-scale codes")
    else:
        name = find_sampler("resample_scale", reg)
        edits["resample_scale"] = (
            Edit(True, "a pyramid with per-scale codes (Latents.styles)", name, len(styles))
            if name
            else Edit(False, "no installed sampler takes scales= and reference=")
        )

    blocks = class_weight_blocks(model, cond) if model.injector is not None else []
    if not blocks:
        edits["label_collage"] = Edit(False, "no norm layer of the model reads class weights")
    else:
        name = find_sampler("label_collage", reg)
        edits["label_collage"] = (
            Edit(True, f"norm layers reading class weights: {len(blocks)}", name, len(blocks))
            if name
            else Edit(False, "no installed sampler takes class_weights=, layers=, intensity=")
        )

    stages = getattr(model.generator, "stages", None)
    if not isinstance(stages, nn.ModuleList) or model.injector is None:
        why = "the generator keeps no `stages`" if model.injector else "the model has no prior"
        edits["blend"] = Edit(False, why)
    else:
        name = find_sampler("blend", reg)
        edits["blend"] = (
            Edit(True, f"features blended at all {len(stages)} stages", name, len(stages))
            if name
            else Edit(False, "no installed sampler takes masks=, references=, target=")
        )
    image_size = _image_size(model, out_size) if kind == "image" else None
    return Capabilities(
        input=kind,
        fields=fields,
        num_classes=k,
        class_names=names,
        size=out_size,
        image_size=image_size,
        mask="mask" in fields,
        edits=edits,
    )
