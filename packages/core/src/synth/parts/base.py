"""The part kinds (DESIGN §3): one ABC per kind, each configured by a pydantic ``Config``.

A part is built from a validated config, ``Part(config)``; ``synth.build`` does that from a spec
and offers runtime arguments. Capability declarations (``requires``, ``provides``, ``needs``)
are class attributes so the composer can check a whole model before allocating a tensor;
parts whose capabilities depend on their config override the matching classmethod.
"""

from __future__ import annotations

import copy
import difflib
import inspect
import warnings
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

import torch
from pydantic import ValidationError
from torch import Tensor, nn

from ..condition import Condition
from ..config import PartConfig, format_validation_error
from ..context import Context
from ..errors import CapabilityError
from ..latents import Latents
from ..outputs import DiscriminatorOutput, LossInputs, SynthesisOutput

if TYPE_CHECKING:
    from ..model import SynthesisModel

__all__ = [
    "DEPRECATED_KINDS",
    "KINDS",
    "ConditioningBlock",
    "Discriminator",
    "Generator",
    "LatentInjector",
    "Loss",
    "LossConfig",
    "Metric",
    "Objective",
    "Part",
    "Sampler",
    "Updater",
]


# --------------------------------------------------------------------------- building slots

#: Builds a part from a spec, offering runtime arguments: ``builder(spec, **offered) -> Part``.
PartBuilder = Callable[..., "Part"]
_builder: PartBuilder | None = None


def install_builder(builder: PartBuilder) -> None:
    """Set the function :func:`build_part` delegates to. The registry installs its ``build``
    when imported: parts sit below the registry and build their slots without importing it."""
    global _builder
    _builder = builder


def build_part(spec: Mapping[str, Any] | str, /, **offered: Any) -> Part:
    """Build the part named by ``spec`` in the active registry (slots, a sampler's distance)."""
    if _builder is None:
        raise RuntimeError("no part builder installed: import synth before building parts")
    return _builder(spec, **offered)


# --------------------------------------------------------------------------- the base of every kind


class Part:
    """Mixin shared by every kind: holds the validated ``config``.

    ``Part(config)`` accepts an instance of ``Config``, a mapping, or keyword arguments.
    ``name`` is the registry name the part was built under (``None`` when built directly).
    """

    Config: ClassVar[type[PartConfig]] = PartConfig
    kind: ClassVar[str] = ""
    requires: ClassVar[frozenset[str]] = frozenset()

    def __init__(self, config: PartConfig | Mapping[str, Any] | None = None, **kwargs: Any):
        super().__init__()
        self.config = self.coerce_config(config, **kwargs)
        self.name: str | None = None

    @classmethod
    def coerce_config(
        cls, config: PartConfig | Mapping[str, Any] | None = None, **kwargs: Any
    ) -> PartConfig:
        if isinstance(config, cls.Config) and not kwargs:
            return config
        if isinstance(config, PartConfig):
            config = config.model_dump()
        data = {**dict(config or {}), **kwargs}
        data.pop("type", None)
        try:
            return cls.Config(**data)
        except ValidationError as e:
            raise format_validation_error(e, cls.__qualname__, cls.Config) from None

    @classmethod
    def requirements(cls, config: PartConfig | None = None) -> frozenset[str]:
        """Condition/latent fields this part reads itself (not counting its slots)."""
        return cls.requires


# --------------------------------------------------------------------------- conditioning


class ConditioningBlock(Part, nn.Module, ABC):
    """A normalisation/modulation block: ``forward(x, ctx) -> x`` at one stage.

    ``requires`` names the Condition fields (``label_map``, ``class_weights``, ``class_id``,
    ...) and Latents fields (``styles``, ``class_codes``, ...) it reads from ``ctx``.
    Typical runtime arguments it may declare: ``channels``, ``num_classes``, ``stage``,
    ``num_stages``, ``style_dim``, ``code_dim``.
    """

    kind = "conditioning"

    @abstractmethod
    def forward(self, x: Tensor, ctx: Context) -> Tensor:
        """``x: [B, C, H, W] -> [B, C, H, W]``."""


# --------------------------------------------------------------------------- injectors


class LatentInjector(Part, nn.Module, ABC):
    """Produces Latents: from a prior (sampling) and, if ``has_posterior``, from an image.

    ``provides`` names the Latents fields it fills. The generator offers it runtime arguments
    (``z_dim``, ``num_stages``, ``style_dim``, ``num_classes``, ``code_dim``, ``channels``, ...)
    through :meth:`Generator.runtime_args`.
    """

    kind = "injector"
    provides: ClassVar[frozenset[str]] = frozenset()
    has_posterior: ClassVar[bool] = False

    @classmethod
    def provided(cls, config: PartConfig | None = None) -> frozenset[str]:
        """Latents fields filled by ``prior`` (and ``posterior``, plus ``kl``)."""
        return cls.provides

    @abstractmethod
    def prior(self, cond: Condition, generator: torch.Generator | None = None) -> Latents:
        """Sample codes for each input of ``cond`` (seeded by ``generator``)."""

    def posterior(self, image: Tensor, cond: Condition) -> Latents:
        """Encode ``image: [B, 3, H, W]`` (with its condition) into codes, ``kl`` set."""
        raise CapabilityError(
            f"{type(self).__name__} has no posterior (it only samples from its prior); use an "
            "injector with has_posterior=True, e.g. an encoder, to encode images"
        )

    def forward(self, cond: Condition, generator: torch.Generator | None = None) -> Latents:
        return self.prior(cond, generator)


# --------------------------------------------------------------------------- generators


class Generator(Part, nn.Module, ABC):
    """Maps a Condition and Latents to an image.

    Subclasses keep their stages in ``self.stages: nn.ModuleList`` (stage i's output is
    ``features[i]``) and set ``stage_channels`` / ``stage_scales`` (downsampling factor of each
    stage relative to the output). Slot fields of the Config (e.g. ``norm``) are part specs;
    build one block per use with :meth:`build_slot`.
    """

    kind = "generator"
    #: Whether the output carries ``pyramid``; such generators set ``pyramid_scales``.
    has_pyramid: ClassVar[bool] = False
    #: Output height and width must be multiples of this (checked at the boundary).
    size_multiple: ClassVar[int] = 1
    image_channels: ClassVar[int] = 3

    stages: nn.ModuleList
    stage_channels: list[int]
    stage_scales: list[int]
    #: With ``has_pyramid``: each pyramid level's downsampling factor vs the output, coarsest
    #: first, powers of two, the last 1 (the output image).
    pyramid_scales: list[int]

    @classmethod
    def produces(cls, config: PartConfig | None = None) -> frozenset[str]:
        """What its output carries: ``image``, ``features`` and, with per-scale heads, ``pyramid``."""
        out = {"image", "features"}
        if cls.has_pyramid:
            out.add("pyramid")
        return frozenset(out)

    def build_slot(self, spec: Mapping[str, Any] | str, **offered: Any) -> Part:
        """Build the part in a slot, offering runtime arguments (only declared ones are passed)."""
        return build_part(spec, **offered)

    def runtime_args(self) -> dict[str, Any]:
        """Values offered to the model's other parts (injector, discriminator, losses).

        The default offers ``num_classes``/``z_dim``/``style_dim``/``code_dim`` when the Config
        has them, plus ``num_stages``, ``stage_channels`` and ``stage_scales``, and
        ``pyramid_levels`` (the pyramid's levels) for generators with a pyramid.
        """
        out: dict[str, Any] = {}
        for key in ("num_classes", "z_dim", "style_dim", "code_dim"):
            if key in type(self.config).model_fields:
                out[key] = getattr(self.config, key)
        if hasattr(self, "stage_channels"):
            out["num_stages"] = len(self.stage_channels)
            out["stage_channels"] = list(self.stage_channels)
            out["stage_scales"] = list(self.stage_scales)
        if self.has_pyramid and hasattr(self, "pyramid_scales"):
            out["pyramid_levels"] = len(self.pyramid_scales)
        return out

    @property
    def num_classes(self) -> int | None:
        """K when the generator reads a label map, else ``None``: its ``runtime_args`` offer, so
        a wrapper (e.g. a pyramid adapter) reports the generator it wraps."""
        return self.runtime_args().get("num_classes")

    def output_size(self, input_size: tuple[int, int]) -> tuple[int, int] | None:
        """The output size for an input image of ``input_size`` when the generator fixes it
        (super-resolution by a set factor); ``None`` when the caller chooses the size."""
        return None

    def check_condition(self, cond: Condition) -> None:
        """Raise ``ValueError`` if the generator cannot produce ``cond.size``."""
        m = self.size_multiple
        if cond.size is not None and m > 1 and (cond.size[0] % m or cond.size[1] % m):
            h, w = cond.size
            fix = (-(-h // m) * m, -(-w // m) * m)
            raise ValueError(
                f"{type(self).__name__} cannot produce size {cond.size}: height and width must "
                f"be multiples of {m}; resize or pad the inputs to e.g. {fix}"
            )

    @abstractmethod
    def forward(
        self, cond: Condition, latents: Latents | None = None, *, return_features: bool = False
    ) -> SynthesisOutput:
        """``image: [B, 3, H, W]`` (features per stage when ``return_features``)."""


# --------------------------------------------------------------------------- discriminators


class Discriminator(Part, nn.Module, ABC):
    """Scores images (optionally given the condition), at one or several scales."""

    kind = "discriminator"
    image_channels: ClassVar[int] = 3
    #: A discriminator that scores each level of an RGB pyramid (one per scale) declares it:
    #: objectives then call ``disc(image, cond, pyramid=levels)`` with the generator's
    #: pyramid for fakes and ``synth.nn.ops.pool_pyramid(real, sizes)`` for reals; without
    #: ``pyramid`` it pools the levels from ``image`` itself.
    reads_pyramid: ClassVar[bool] = False

    @classmethod
    def produces(cls, config: PartConfig | None = None) -> frozenset[str]:
        return frozenset({"disc_logits", "disc_features"})

    @abstractmethod
    def forward(self, image: Tensor, cond: Condition) -> DiscriminatorOutput:
        """``image: [B, 3, H, W]`` -> per-scale logits and features."""


# --------------------------------------------------------------------------- losses


class LossConfig(PartConfig):
    """Base config of every loss: its weight in the objective's sum."""

    weight: float = 1.0


class Loss(Part, nn.Module, ABC):
    """One term of an objective: ``forward(batch: LossInputs) -> scalar`` (unweighted).

    ``roles`` names the phases it takes part in ("generator", "discriminator", "encoder"); a GAN
    loss has both "generator" and "discriminator" and reads ``batch.phase`` to pick its term.
    ``needs`` names what it reads beyond images: ``disc_logits``, ``disc_features``,
    ``features``, ``pyramid``, ``samples``, ``kl``.
    """

    kind = "loss"
    Config: ClassVar[type[PartConfig]] = LossConfig
    roles: ClassVar[frozenset[str]] = frozenset({"generator"})
    needs: ClassVar[frozenset[str]] = frozenset()
    #: False for losses whose state is a frozen pretrained backbone (not saved with the model).
    state_in_checkpoint: ClassVar[bool] = True

    @property
    def role(self) -> str:
        """The roles as one string, e.g. ``"discriminator+generator"``."""
        return "+".join(sorted(self.roles))

    @property
    def weight(self) -> float:
        return float(getattr(self.config, "weight", 1.0))

    @abstractmethod
    def forward(self, batch: LossInputs) -> Tensor:
        """Scalar loss for ``batch.phase`` (unweighted)."""

    def distance(self, x: Tensor, y: Tensor) -> Tensor:
        """Per-sample distance ``[B]`` between images ``x, y: [B, C, H, W]``.

        Losses that are image distances (L1, perceptual, LPIPS) implement it; best-of-n search
        and IMLE code selection rank candidates with it.
        """
        raise CapabilityError(
            f"{type(self).__name__} is not an image distance; use e.g. core.l1, core.perceptual "
            "or core.lpips where a distance is needed"
        )


# --------------------------------------------------------------------------- samplers


class Sampler(Part, ABC):
    """Draws ``n`` samples per input (k-diffusion style: one shared head, pure, seeded).

    ``sample(model, cond, n, *, generator=None, <own keywords>) -> SynthesisOutput``. After
    the shared head a sampler declares its own parameters as keyword-only, type-hinted
    arguments (required ones without a default): ``target: Tensor | None = None``,
    ``classes: Sequence[int]``, ``reference: Tensor`` -- never ``**kwargs``. Calling the
    sampler, ``sampler(model, cond, n, generator=g, **keywords)`` (what
    ``SynthesisModel.sample`` does), binds the keywords against that signature first, so an
    unknown or missing keyword is a ``TypeError`` naming the sampler and what it takes; a
    third-party sampler gets this from its signature alone.

    Returns a SynthesisOutput with ``image: [B·n, C, H, W]`` ordered ``(b n)`` and the
    ``latents`` used.

    A sampler with fitted state (e.g. k-means centres) also derives ``torch.nn.Module`` and
    keeps that state in buffers: as a model's sampler it is a submodule, so its state is in
    ``model.state_dict()`` and saves and loads with the model. Stateless samplers need not be
    modules.
    """

    kind = "sampler"
    #: The shared head: the parameters every ``sample`` starts with.
    HEAD: ClassVar[tuple[str, ...]] = ("model", "cond", "n", "generator")

    @abstractmethod
    def sample(
        self,
        model: SynthesisModel,
        cond: Condition,
        n: int,
        *,
        generator: torch.Generator | None = None,
    ) -> SynthesisOutput:
        """``n`` samples per input drawn with ``generator``; subclasses add their keywords."""

    @classmethod
    def keywords(cls) -> dict[str, inspect.Parameter]:
        """The sampler's own parameters: ``sample``'s signature after the shared head."""
        params = inspect.signature(cls.sample).parameters
        return {k: p for k, p in params.items() if k != "self" and k not in cls.HEAD}

    def bind(
        self,
        model: SynthesisModel,
        cond: Condition,
        n: int,
        *,
        generator: torch.Generator | None = None,
        **keywords: Any,
    ) -> inspect.BoundArguments:
        """Bind a call against ``sample``'s signature; a ``TypeError`` names what it takes."""
        own = type(self).keywords()
        kinds = {p.kind for p in own.values()}
        named = {k: p for k, p in own.items() if p.kind in _NAMED}
        unexpected = [] if _VAR_KEYWORD in kinds else sorted(set(keywords) - set(named))
        missing = [k for k, p in named.items() if p.default is p.empty and k not in keywords]
        if unexpected or missing:
            raise TypeError(_keyword_error(self, unexpected, missing, named))
        try:
            return inspect.signature(self.sample).bind(
                model, cond, n, generator=generator, **keywords
            )
        except TypeError as e:
            raise TypeError(f"{_sampler_name(self)}: {e}; {_takes(self, named)}") from None

    def __call__(
        self,
        model: SynthesisModel,
        cond: Condition,
        n: int,
        *,
        generator: torch.Generator | None = None,
        **keywords: Any,
    ) -> SynthesisOutput:
        """:meth:`sample` after checking ``keywords`` against its signature (:meth:`bind`)."""
        bound = self.bind(model, cond, n, generator=generator, **keywords)
        return self.sample(*bound.args, **bound.kwargs)


_VAR_KEYWORD = inspect.Parameter.VAR_KEYWORD
_NAMED = (inspect.Parameter.KEYWORD_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)


def _sampler_name(sampler: Sampler) -> str:
    return f"sampler {sampler.name or type(sampler).__name__}"


def _format_keyword(p: inspect.Parameter) -> str:
    """``name: Type = default``, or ``name: Type (required)``."""
    ann = p.annotation
    text = p.name
    if ann is not p.empty:
        text += f": {ann if isinstance(ann, str) else inspect.formatannotation(ann)}"
    return text + (" (required)" if p.default is p.empty else f" = {p.default!r}")


def _takes(sampler: Sampler, named: Mapping[str, inspect.Parameter]) -> str:
    own = ", ".join(_format_keyword(p) for p in named.values())
    head = f"{type(sampler).__name__}.sample(model, cond, n, *, generator=None"
    return f"it takes {head}{', ' + own if own else ''})" + ("" if own else ": no own keywords")


def _keyword_error(
    sampler: Sampler,
    unexpected: list[str],
    missing: list[str],
    named: Mapping[str, inspect.Parameter],
) -> str:
    """The message for keywords that do not fit ``sample``'s signature."""
    problems = []
    if unexpected:
        hints = {k: difflib.get_close_matches(k, list(named), n=1) for k in unexpected}
        shown = [f"{k!r}" + (f" (did you mean {h[0]!r}?)" if h else "") for k, h in hints.items()]
        problems.append(f"got unexpected argument(s) {', '.join(shown)}")
    if missing:
        problems.append(f"is missing required argument(s) {', '.join(map(repr, missing))}")
    return f"{_sampler_name(sampler)} {' and '.join(problems)}; {_takes(sampler, named)}"


# --------------------------------------------------------------------------- metrics


class Metric(Part, ABC):
    """Accumulates over batches; ``compute()`` returns values plus the settings used.

    State is declared once: ``__init__`` calls ``self.add_state(name, default)`` for each
    accumulator, and :meth:`reset` sets every declared one back to a copy of its default,
    leaving networks, settings and caches as they are. A metric with state held elsewhere (a
    wrapped torchmetrics metric, say) overrides ``reset`` and calls ``super().reset()``.
    """

    kind = "metric"

    @abstractmethod
    def update(self, *args: Any, **kwargs: Any) -> None: ...

    @abstractmethod
    def compute(self) -> dict[str, Any]:
        """Values and a ``"settings"`` entry (backbone, weights, resolution, n, ...)."""

    def add_state(self, name: str, default: Any) -> None:
        """Declare the accumulator ``self.<name>``, set now and by every :meth:`reset` to a
        (deep) copy of ``default``, e.g. ``self.add_state("total", 0.0)``."""
        declared = self.__dict__.setdefault("_state_defaults", {})
        declared[name] = copy.deepcopy(default)
        setattr(self, name, copy.deepcopy(default))

    def reset(self) -> None:
        """Forget accumulated state: each attribute declared with :meth:`add_state` gets a copy
        of its default; nothing else changes (networks are kept)."""
        declared: dict[str, Any] | None = self.__dict__.get("_state_defaults")
        if declared is None:
            self._rebuild_undeclared()
            return
        for name, default in declared.items():
            setattr(self, name, copy.deepcopy(default))

    def _rebuild_undeclared(self) -> None:
        """Deprecated path for metrics written before :meth:`add_state`: adopt the state of a
        fresh instance built from the same config (its networks too, which is slow)."""
        warnings.warn(
            f"{type(self).__name__} declares no state, so reset() rebuilds it from its config; "
            "declare accumulators with self.add_state(name, default) in __init__ (or override "
            "reset()): the rebuild goes in plugin API 2",
            DeprecationWarning,
            stacklevel=3,
        )
        fresh = type(self)(self.config)
        fresh.name = self.name
        vars(self).update(vars(fresh))


# --------------------------------------------------------------------------- objectives


class Updater(Protocol):
    """What the Trainer hands an objective: how to apply a loss to networks.

    ``step`` is the iteration index and ``d_steps`` the discriminator steps per generator step.
    """

    step: int
    d_steps: int

    def update(self, network: str | tuple[str, ...], loss: Tensor) -> None:
        """Backward ``loss`` and step the optimizer(s) of ``network`` (AMP, clipping; under
        torchrun DDP all-reduces the gradients during the backward).

        Networks the model does not have (or that have nothing to train) are skipped.
        """

    def autocast(self) -> Any:
        """Context manager for the forward passes (mixed precision when enabled)."""

    def synced(self, network: Any) -> Any:
        """``network`` as the forwards of a loss given to :meth:`update` must call it: its
        ``DistributedDataParallel`` view under torchrun, the network itself otherwise. The
        Trainer refuses an update whose loss bypassed it (the ranks would drift apart)."""


class Objective(Part, ABC):
    """One training iteration's logic (GAN, VAE-GAN, IMLE). The Trainer owns the loop.

    ``networks`` lists the model attributes that get an optimizer; ``requires_parts`` the parts
    the model must have (e.g. ``{"discriminator"}``); ``provides`` what it adds to the loss
    inputs (e.g. ``{"samples"}``); ``logged_settings`` the keys :meth:`step` logs that are
    settings or counters, not losses (logged and printed, left out of ``loss_curve.png``).
    """

    kind = "objective"
    networks: ClassVar[tuple[str, ...]] = ("generator",)
    requires_parts: ClassVar[frozenset[str]] = frozenset()
    provides: ClassVar[frozenset[str]] = frozenset()
    logged_settings: ClassVar[frozenset[str]] = frozenset()

    @classmethod
    def provided(cls, config: PartConfig | None = None) -> frozenset[str]:
        """What it adds to the loss inputs with this config (default: ``provides``)."""
        return cls.provides

    def setup(self, model: SynthesisModel, dataset: Any, device: torch.device) -> None:
        """Called once by the Trainer before the first step (e.g. IMLE keeps the data set to
        draw its selection pool from). Default: nothing."""

    def state_dict(self) -> dict[str, Any]:
        """State the objective carries between steps (saved in checkpoints; tensors, numbers,
        strings, lists and dicts only). Default: none."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned (on resume)."""

    @abstractmethod
    def step(
        self, model: SynthesisModel, cond: Condition, real: Tensor, updater: Updater
    ) -> dict[str, Tensor]:
        """Run one iteration on a batch; return the logged scalars as detached 0-d tensors
        (the Trainer checks them for NaN/Inf and averages them between log lines)."""


#: kind name -> ABC.
KINDS: dict[str, type[Part]] = {
    "conditioning": ConditioningBlock,
    "injector": LatentInjector,
    "generator": Generator,
    "discriminator": Discriminator,
    "loss": Loss,
    "sampler": Sampler,
    "metric": Metric,
    "objective": Objective,
}

#: Kind names of earlier releases, accepted (with a DeprecationWarning) for one release.
DEPRECATED_KINDS: dict[str, str] = {"trainer": "objective"}
