"""The conformance checks behind :func:`synth.testing.check_part` (DESIGN §8).

One *harness* per part kind knows how to make example inputs, run the part, validate its
output and which tensors to compare; the checks themselves are kind-agnostic.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import json
import math
import re
import traceback
from collections.abc import Callable, Iterable, Mapping
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from ..condition import CONDITION_FIELDS, Condition
from ..config import RUNTIME_ARGS, PartConfig, normalize_spec, slot_fields
from ..context import Context
from ..latents import LATENT_FIELDS, Latents
from ..outputs import DiscriminatorOutput, LossInputs, SynthesisOutput
from ..parts import KINDS, Loss, Part
from ..registry import Registry, get_registry, using_registry
from .inputs import (
    config_value,
    make_condition,
    make_image,
    make_latents,
    make_loss_inputs,
)

__all__ = [
    "CHECKS",
    "CheckResult",
    "ConformanceError",
    "ConformanceReport",
    "check_part",
]

#: The named checks, in the order they run.
CHECKS: tuple[str, ...] = (
    "build",
    "config_roundtrip",
    "forward",
    "gradients",
    "save_load",
    "determinism",
    "dtypes",
    "compile",
)

STATUSES = ("passed", "failed", "n/a", "skipped")
PHASES = frozenset({"generator", "discriminator", "encoder"})
LOSS_NEEDS = frozenset({"disc_logits", "disc_features", "features", "pyramid", "samples", "kl"})
#: |image| a generator may reach: [-1, 1] with a little slack for non-tanh heads.
IMAGE_BOUND = 1.05
#: Eager vs. compiled agreement ("loose": compile may reorder float ops).
COMPILE_RTOL, COMPILE_ATOL = 1e-3, 1e-4


# --------------------------------------------------------------------------- report


@dataclasses.dataclass
class CheckResult:
    """Outcome of one named check: ``status`` is "passed", "failed", "n/a" or "skipped"."""

    name: str
    status: str
    detail: str = ""
    fix: str = ""

    def line(self) -> str:
        text = f"  {self.status:<8} {self.name}"
        if self.detail:
            text += f": {self.detail}"
        if self.fix:
            text += f" — fix: {self.fix}"
        return text


@dataclasses.dataclass
class ConformanceReport:
    """What :func:`check_part` found for one part: one :class:`CheckResult` per check."""

    part: str
    kind: str
    params: dict[str, Any] = dataclasses.field(default_factory=dict)
    checks: dict[str, CheckResult] = dataclasses.field(default_factory=dict)

    @property
    def passed(self) -> bool:
        """True when no check failed (n/a and skipped checks do not count as failures)."""
        return not self.failures

    @property
    def failures(self) -> list[CheckResult]:
        return [c for c in self.checks.values() if c.status == "failed"]

    def status(self, check: str) -> str:
        return self.checks[check].status

    def counts(self) -> dict[str, int]:
        return {s: sum(c.status == s for c in self.checks.values()) for s in STATUSES}

    def __str__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in self.params.items())
        counts = ", ".join(f"{n} {s}" for s, n in self.counts().items())
        head = f"conformance of {self.part!r} ({self.kind or 'unknown kind'})"
        if params:
            head += f" with {params}"
        return "\n".join([f"{head}: {counts}", *(c.line() for c in self.checks.values())])

    def raise_for_failures(self) -> ConformanceReport:
        """Raise :class:`ConformanceError` listing every failed check; return self otherwise."""
        if self.failures:
            raise ConformanceError(self)
        return self


class ConformanceError(AssertionError):
    """A part failed conformance checks; ``.report`` holds the full :class:`ConformanceReport`.

    The message lists each failing check with the part name, what was observed and the fix.
    """

    def __init__(self, report: ConformanceReport) -> None:
        self.report = report
        fails = report.failures
        lines = [
            f"{report.part} ({report.kind}) failed {len(fails)} of {len(report.checks)} "
            "conformance checks:"
        ]
        for c in fails:
            lines.append(
                f"  - {report.part} {c.name}: {c.detail}" + (f" — fix: {c.fix}" if c.fix else "")
            )
        lines += ["", str(report)]
        super().__init__("\n".join(lines))


class _Failed(Exception):
    """Raised inside a check: a list of ``(observed, fix)`` problems."""

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        super().__init__(problems)
        self.problems = problems


class _NotApplicable(Exception):
    """Raised inside a check that does not apply to this part."""


class _Skipped(Exception):
    """Raised inside a check that cannot be judged (the reason names the check that can)."""


def _fail(observed: str, fix: str) -> None:
    raise _Failed([(observed, fix)])


class _Problems:
    def __init__(self) -> None:
        self.items: list[tuple[str, str]] = []

    def add(self, observed: str, fix: str = "") -> None:
        self.items.append((observed, fix))

    def extend(self, items: Iterable[tuple[str, str]]) -> None:
        self.items.extend(items)

    def raise_if_any(self) -> None:
        if self.items:
            raise _Failed(self.items)


# --------------------------------------------------------------------------- tensor helpers


def _flatten(obj: Any, prefix: str = "out") -> dict[str, Tensor]:
    """Every tensor (and number) in a nested output, by a readable path."""
    out: dict[str, Tensor] = {}
    if isinstance(obj, Tensor):
        out[prefix] = obj
    elif isinstance(obj, bool) or obj is None or isinstance(obj, str):
        pass
    elif isinstance(obj, (int, float)):
        out[prefix] = torch.tensor(float(obj))
    elif isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            out.update(_flatten(v, f"{prefix}[{i}]"))
    elif isinstance(obj, Mapping):
        for k, v in obj.items():
            out.update(_flatten(v, f"{prefix}[{k!r}]"))
    elif isinstance(obj, Condition):
        pass
    elif dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        for f in dataclasses.fields(obj):
            out.update(_flatten(getattr(obj, f.name), f"{prefix}.{f.name}"))
    return out


def _max_diff(a: Tensor, b: Tensor) -> float:
    if not (a.is_floating_point() or a.is_complex()):
        return float((a != b).sum())
    d = (a.detach().double() - b.detach().double()).abs()
    d = torch.where(torch.isnan(a.detach()) & torch.isnan(b.detach()), 0.0, d)
    return float(d.max()) if d.numel() else 0.0


def _compare(
    a: dict[str, Tensor],
    b: dict[str, Tensor],
    *,
    exact: bool = True,
    values: bool = True,
    rtol: float = 0.0,
    atol: float = 0.0,
) -> list[str]:
    """Differences between two flattened outputs, as readable strings."""
    diffs: list[str] = []
    if set(a) != set(b):
        only_a, only_b = sorted(set(a) - set(b)), sorted(set(b) - set(a))
        diffs.append(f"different outputs: {only_a} only in the first, {only_b} only in the second")
    for k in [k for k in a if k in b]:
        x, y = a[k], b[k]
        if x.shape != y.shape or x.dtype != y.dtype:
            diffs.append(f"{k}: {tuple(x.shape)} {x.dtype} vs {tuple(y.shape)} {y.dtype}")
            continue
        if not values:
            continue
        xd, yd = x.detach(), y.detach()
        if exact:
            same = torch.equal(xd, yd) or (
                xd.is_floating_point() and bool(torch.equal(xd.nan_to_num(), yd.nan_to_num()))
            )
        else:
            same = bool(
                torch.allclose(xd.float(), yd.float(), rtol=rtol, atol=atol, equal_nan=True)
            )
        if not same:
            diffs.append(f"{k} differs (max |diff| = {_max_diff(xd, yd):.3g})")
    return diffs


def _nonfinite(tensors: dict[str, Tensor]) -> list[str]:
    return [
        k
        for k, t in tensors.items()
        if t.is_floating_point() and not bool(torch.isfinite(t.detach()).all())
    ]


def _projection(tensors: dict[str, Tensor], seed: int) -> Tensor | None:
    """A scalar that depends on every element of every differentiable output.

    A random projection rather than a plain sum: the sum of a normalised output is constant,
    so a sum would leave e.g. a norm's affine weight without gradient.
    """
    g = torch.Generator().manual_seed(seed)
    total: Tensor | None = None
    for t in tensors.values():
        if not (t.is_floating_point() and t.requires_grad):
            continue
        w = torch.randn(t.shape, generator=g).to(t.device)
        term = (t.float() * w).sum() / math.sqrt(max(t.numel(), 1))
        total = term if total is None else total + term
    return total


def _state(part: Any) -> dict[str, Tensor]:
    return dict(part.state_dict()) if isinstance(part, nn.Module) else {}


def _mode(part: Any, train: bool) -> None:
    if isinstance(part, nn.Module):
        part.train(train)


def _brief(e: BaseException, limit: int = 400) -> str:
    """``Type: first lines of the message`` plus where in the part's code it was raised."""
    msg = " ".join(str(e).split())
    if len(msg) > limit:
        msg = msg[: limit - 3] + "..."
    where = ""
    frames = traceback.extract_tb(e.__traceback__)
    for fr in reversed(frames):
        if "/synth/testing/" not in fr.filename.replace("\\", "/"):
            where = f" (at {fr.filename}:{fr.lineno} in {fr.name})"
            break
    return f"{type(e).__name__}: {msg}{where}"


_USER_FRAME = re.compile(r'File "([^"]+)", line (\d+), in (\S+)')


def _graph_break(e: BaseException) -> str:
    """The reason and user-code location of a dynamo error."""
    lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
    reason = lines[0] if lines else type(e).__name__
    expl = next((ln for ln in lines if ln.startswith("Explanation:")), "")
    frames = [m for m in (_USER_FRAME.search(ln) for ln in lines) if m]
    frames = [m for m in frames if "/synth/testing/" not in m.group(1)] or frames
    where = ""
    if frames:
        m = frames[-1]
        where = f" at {m.group(1)}:{m.group(2)} in {m.group(3)}"
    text = f"{type(e).__name__}: {reason}"
    if expl:
        text += f" ({expl[len('Explanation:') :].strip()})"
    return text + where


# --------------------------------------------------------------------------- the run


@dataclasses.dataclass
class _Setup:
    name: str
    registry: Registry
    seed: int
    batch_size: int
    size: tuple[int, int]
    params: dict[str, Any]
    compile_backend: str
    override: Mapping[str, Any] | Callable[..., Mapping[str, Any]] | None = None

    def generator(self, offset: int = 0) -> torch.Generator:
        return torch.Generator().manual_seed(self.seed + offset)

    def build(self, seed_offset: int = 0) -> Part:
        torch.manual_seed(self.seed + seed_offset)
        return self.registry.build(self.name, **self.params)


# --------------------------------------------------------------------------- harnesses


class _Harness:
    """Kind-specific knowledge: example inputs, running, validating, compiling."""

    kind: ClassVar[str] = ""
    keys: ClassVar[frozenset[str]] = frozenset()
    applicable: ClassVar[frozenset[str]] = frozenset(CHECKS)
    na_reason: ClassVar[str] = ""

    def __init__(self, setup: _Setup) -> None:
        self.s = setup

    # ---- inputs
    def size(self, part: Part) -> tuple[int, int]:
        return self.s.size

    def inputs(self, part: Part) -> dict[str, Any]:
        """Example inputs: the caller's override, else the part's ``example_inputs``, else
        defaults from its declared capabilities (for the keys neither gave)."""
        kwargs = {
            "batch_size": self.s.batch_size,
            "size": self.size(part),
            "generator": self.s.generator(),
        }
        given: dict[str, Any] = {}
        source = None
        if self.s.override is not None:
            source = "check_part(example_inputs=...)"
            ov = self.s.override
            given = dict(ov(**kwargs) if callable(ov) else ov)
        else:
            fn = getattr(part, "example_inputs", None)
            if callable(fn):
                source = f"{type(part).__name__}.example_inputs"
                given = dict(fn(**kwargs))
        unknown = sorted(set(given) - self.keys)
        if unknown:
            raise ValueError(
                f"{source} returned unknown key(s) {unknown}; a {self.kind} part's example "
                f"inputs are {sorted(self.keys)}"
            )
        missing = set(self.keys) - set(given)
        defaults = self.defaults(part, missing, self.s.generator(1)) if missing else {}
        return {**defaults, **given}

    def defaults(self, part: Part, missing: set[str], g: torch.Generator) -> dict[str, Any]:
        return {}

    def declared(self, part: Part) -> frozenset[str]:
        """What the default example inputs are made from."""
        return _requirements(part)

    def input_hint(self, part: Part) -> str:
        """The fix offered when running the part on its example inputs raises."""
        try:
            fields = sorted(self.declared(part))
        except Exception:
            fields = []
        return (
            "the default example inputs carry exactly the Condition/Latents fields the part "
            f"declares ({fields}): declare every field forward reads in `requires` / "
            "`requirements(config)`, or define example_inputs() if the defaults do not fit"
        )

    # ---- running
    def run(self, part: Part, inp: dict[str, Any], seed: int) -> Any:
        """Run the part on ``inp``; ``seed`` seeds its ``torch.Generator`` where it takes one."""
        raise _NotApplicable(f"{self.kind} parts are only built and configured by the kit")

    def validate(self, part: Part, inp: dict[str, Any], out: Any) -> list[tuple[str, str]]:
        return []

    def stochastic(self, part: Part) -> bool:
        """Whether outputs are drawn from the ``torch.Generator`` seed given to :meth:`run`."""
        return False

    def grad_leaves(self, inp: dict[str, Any]) -> dict[str, Tensor]:
        """Inputs that must receive a gradient (e.g. a block's ``x``)."""
        return {}

    def extra_grad_problems(self, part: Part) -> list[tuple[str, str]]:
        return []

    def compile_cases(
        self, part: Part
    ) -> list[tuple[str, Callable[..., Any], Callable[[], tuple], bool]]:
        """``(label, fn, make_args, exact)``: functions to compile with ``fullgraph=True``."""
        raise _NotApplicable(f"{self.kind} parts are not compiled")


def _requirements(part: Part) -> frozenset[str]:
    return frozenset(type(part).requirements(part.config))


def _num_classes(part: Part) -> int:
    return int(config_value(part.config, "num_classes", 4))


class _Conditioning(_Harness):
    kind = "conditioning"
    keys = frozenset({"x", "cond", "latents", "stage"})

    def defaults(self, part, missing, g):
        cfg = part.config
        c = int(config_value(cfg, "channels", 8))
        stage = int(config_value(cfg, "stage", 0))
        reqs = _requirements(part)
        h, w = self.size(part)
        cond = make_condition(
            reqs,
            batch_size=self.s.batch_size,
            size=(h, w),
            num_classes=_num_classes(part),
            generator=g,
        )
        latents = make_latents(
            reqs,
            batch_size=self.s.batch_size,
            size=(h, w),
            z_dim=int(config_value(cfg, "z_dim", 8)),
            style_dim=int(config_value(cfg, "style_dim", 8)),
            num_stages=max(int(config_value(cfg, "num_stages", 1)), stage + 1),
            num_classes=_num_classes(part),
            code_dim=int(config_value(cfg, "code_dim", 8)),
            channels=c,
            generator=g,
        )
        x = torch.randn(self.s.batch_size, c, max(h // 2, 1), max(w // 2, 1), generator=g)
        return {"x": x.requires_grad_(), "cond": cond, "latents": latents, "stage": stage}

    def run(self, part, inp, seed):
        return part(inp["x"], Context(inp["cond"], inp.get("latents"), inp.get("stage", 0)))

    def validate(self, part, inp, out):
        x = inp["x"]
        if not isinstance(out, Tensor):
            return [
                (
                    f"forward returned {type(out).__name__}, not a Tensor",
                    "return the modulated features x: [B, C, H, W]",
                )
            ]
        probs = []
        if out.shape != x.shape:
            probs.append(
                (
                    f"output shape {tuple(out.shape)} != input shape {tuple(x.shape)}",
                    "a conditioning block maps x: [B, C, H, W] to the same shape; change channels "
                    "or resolution outside the block",
                )
            )
        if out.dtype != x.dtype:
            probs.append(
                (
                    f"output dtype {out.dtype} != input dtype {x.dtype}",
                    "cast the result back with .to(x.dtype)",
                )
            )
        if _nonfinite({"out": out}):
            probs.append(("output has NaN/Inf values", "check divisions, logs and eps"))
        return probs

    def grad_leaves(self, inp):
        x = inp["x"]
        return {"x": x} if isinstance(x, Tensor) and x.requires_grad else {}

    def compile_cases(self, part):
        inp = self.inputs(part)

        def make_args():
            return (inp["x"], Context(inp["cond"], inp.get("latents"), inp.get("stage", 0)))

        return [("forward(x, ctx)", lambda x, ctx: part(x, ctx), make_args, True)]


class _Injector(_Harness):
    kind = "injector"
    keys = frozenset({"cond", "image"})

    def defaults(self, part, missing, g):
        reqs = _requirements(part)
        h, w = self.size(part)
        cond = make_condition(
            reqs,
            batch_size=self.s.batch_size,
            size=(h, w),
            num_classes=_num_classes(part),
            generator=g,
        )
        return {"cond": cond, "image": make_image(self.s.batch_size, (h, w), generator=g)}

    def stochastic(self, part):
        return bool(getattr(type(part), "stochastic", True))

    def run(self, part, inp, seed):
        out: dict[str, Any] = {
            "prior": part.prior(inp["cond"], torch.Generator().manual_seed(seed))
        }
        if type(part).has_posterior:
            # The posterior has no generator argument: it is reproducible under the global seed.
            torch.manual_seed(seed)
            out["posterior"] = part.posterior(inp["image"], inp["cond"])
        return out

    def _check_latents(self, part, which, lat, probs) -> None:
        cfg, b = part.config, self.s.batch_size
        if not isinstance(lat, Latents):
            probs.append(
                (
                    f"{which} returned {type(lat).__name__}, not synth.Latents",
                    "return synth.Latents(...)",
                )
            )
            return
        provided = set(type(part).provided(cfg)) - {"kl"}
        missing = sorted(f for f in provided if f not in lat.fields())
        if missing:
            probs.append(
                (
                    f"{which} left {missing} empty although provided({type(cfg).__name__}) "
                    f"declares {sorted(provided)}",
                    "fill every provided field, or make `provided(config)` return only what is filled",
                )
            )

        def shape_ok(name, t, rank, extra=None):
            if not isinstance(t, Tensor) or t.dim() != rank or t.shape[0] != b:
                got = tuple(t.shape) if isinstance(t, Tensor) else type(t).__name__
                probs.append(
                    (
                        f"{which}: latents.{name} is {got}, expected rank {rank} with batch {b}",
                        f"see the Latents field docs for {name}'s shape",
                    )
                )
                return
            if extra is not None:
                dim, want = extra
                if t.shape[dim] != want:
                    probs.append(
                        (
                            f"{which}: latents.{name} is {tuple(t.shape)}, dim {dim} "
                            f"should be {want} (from the config)",
                            "size the codes from the runtime arguments in the config",
                        )
                    )

        z_dim = getattr(cfg, "z_dim", None)
        if lat.z is not None:
            shape_ok("z", lat.z, 2, (1, z_dim) if isinstance(z_dim, int) and z_dim > 0 else None)
        for name in ("styles", "class_codes"):
            codes = getattr(lat, name)
            if codes is None:
                continue
            if not isinstance(codes, list):
                probs.append(
                    (
                        f"{which}: latents.{name} is {type(codes).__name__}, not a list "
                        "(one tensor per stage)",
                        f"return {name} as a list per stage",
                    )
                )
                continue
            n = getattr(cfg, "num_stages", None)
            if isinstance(n, int) and len(codes) != n:
                probs.append(
                    (f"{which}: {len(codes)} {name} for num_stages={n}", "give one code per stage")
                )
            for i, t in enumerate(codes):
                if name == "styles":
                    sd = getattr(cfg, "style_dim", None)
                    shape_ok(
                        f"styles[{i}]", t, 2, (1, sd) if isinstance(sd, int) and sd > 0 else None
                    )
                else:
                    k = getattr(cfg, "num_classes", None)
                    shape_ok(f"class_codes[{i}]", t, 3, (1, k) if isinstance(k, int) else None)
        if lat.spatial is not None:
            shape_ok("spatial", lat.spatial, 4)
        bad = _nonfinite(_flatten(lat, which))
        if bad:
            probs.append((f"{which}: NaN/Inf in {bad}", "check the sampling / encoder math"))

    def validate(self, part, inp, out):
        probs: list[tuple[str, str]] = []
        self._check_latents(part, "prior", out["prior"], probs)
        if "posterior" in out:
            post = out["posterior"]
            self._check_latents(part, "posterior", post, probs)
            kl = getattr(post, "kl", None)
            if not isinstance(kl, Tensor) or kl.dim() != 0:
                got = tuple(kl.shape) if isinstance(kl, Tensor) else repr(kl)
                probs.append(
                    (
                        f"posterior: latents.kl is {got}, expected a scalar tensor",
                        "set Latents.kl to the (batch-mean) KL divergence, a 0-dim tensor",
                    )
                )
        return probs

    def compile_cases(self, part):
        inp = self.inputs(part)
        # torch.Generator arguments are not traceable by dynamo: compile the global-RNG path
        # and compare shapes (values are random).
        cases = [
            (
                "prior(cond, None)",
                lambda cond: part.prior(cond, None),
                lambda: (inp["cond"],),
                False,
            )
        ]
        if type(part).has_posterior:
            cases.append(
                (
                    "posterior(image, cond)",
                    lambda image, cond: part.posterior(image, cond),
                    lambda: (inp["image"], inp["cond"]),
                    False,
                )
            )
        return cases


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
        probs: list[tuple[str, str]] = []
        cls = type(part)
        b = self.s.batch_size
        h, w = inp["cond"].size
        if not isinstance(out, SynthesisOutput):
            return [
                (
                    f"forward returned {type(out).__name__}, not synth.SynthesisOutput",
                    "return SynthesisOutput(image=..., features=...)",
                )
            ]
        img = out.image
        want = (b, cls.image_channels, h, w)
        if not isinstance(img, Tensor) or tuple(img.shape) != want:
            got = tuple(img.shape) if isinstance(img, Tensor) else type(img).__name__
            probs.append(
                (
                    f"image is {got}, expected {want}",
                    "return image: [B, image_channels, H, W] at Condition.size",
                )
            )
        elif _nonfinite({"image": img}):
            probs.append(("image has NaN/Inf values", "check the generator's arithmetic"))
        elif float(img.detach().abs().max()) > IMAGE_BOUND:
            probs.append(
                (
                    f"image reaches {float(img.detach().abs().max()):.3g}, outside [-1, 1]",
                    "end the generator with tanh (images are in [-1, 1])",
                )
            )
        stages = getattr(part, "stages", None)
        sc = list(getattr(part, "stage_channels", []) or [])
        ss = list(getattr(part, "stage_scales", []) or [])
        if not isinstance(stages, nn.ModuleList):
            probs.append(
                (
                    "the generator has no `stages` nn.ModuleList",
                    "keep the stages in self.stages = nn.ModuleList([...])",
                )
            )
        elif len(stages) != len(sc):
            probs.append(
                (
                    f"len(stages) = {len(stages)} but len(stage_channels) = {len(sc)}",
                    "stage i of self.stages produces features[i]: one entry per stage",
                )
            )
        if len(ss) != len(sc):
            probs.append(
                (
                    f"stage_scales has {len(ss)} entries, stage_channels {len(sc)}",
                    "give one scale and one width per stage",
                )
            )
        feats = out.features
        if not isinstance(feats, list):
            probs.append(
                (
                    "return_features=True gave no feature list",
                    "return features=[stage outputs] when return_features is set",
                )
            )
        else:
            if len(feats) != len(sc):
                probs.append(
                    (
                        f"{len(feats)} features for {len(sc)} stages",
                        "return one feature map per stage",
                    )
                )
            for i, (f, c, s) in enumerate(zip(feats, sc, ss)):
                want_f = (b, c, h // s, w // s)
                if not isinstance(f, Tensor) or tuple(f.shape) != want_f:
                    got = tuple(f.shape) if isinstance(f, Tensor) else type(f).__name__
                    probs.append(
                        (
                            f"features[{i}] is {got}, expected {want_f} from "
                            f"stage_channels[{i}]={c}, stage_scales[{i}]={s}",
                            "make stage_channels/stage_scales describe the stage outputs",
                        )
                    )
            bad = _nonfinite(_flatten(feats, "features"))
            if bad:
                probs.append((f"NaN/Inf in {bad}", "check the stages' arithmetic"))
        pyr = out.pyramid
        if cls.has_pyramid:
            if not isinstance(pyr, list) or not pyr:
                probs.append(
                    (
                        "has_pyramid is True but the output has no pyramid",
                        "return pyramid=[per-scale RGB, coarse to fine]",
                    )
                )
            else:
                for i, p in enumerate(pyr):
                    if (
                        not isinstance(p, Tensor)
                        or p.dim() != 4
                        or p.shape[:2] != (b, cls.image_channels)
                    ):
                        got = tuple(p.shape) if isinstance(p, Tensor) else type(p).__name__
                        probs.append(
                            (
                                f"pyramid[{i}] is {got}",
                                f"each pyramid level is [B, {cls.image_channels}, h, w]",
                            )
                        )
                if isinstance(pyr[-1], Tensor) and tuple(pyr[-1].shape[-2:]) != (h, w):
                    probs.append(
                        (
                            f"the finest pyramid level is {tuple(pyr[-1].shape[-2:])}, "
                            f"not the output size {(h, w)}",
                            "order the pyramid coarse to fine, ending at the output size",
                        )
                    )
        elif pyr is not None:
            probs.append(
                (
                    "the output has a pyramid but the class says has_pyramid = False",
                    "set has_pyramid = True so the composer knows",
                )
            )
        return probs

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


class _Discriminator(_Harness):
    kind = "discriminator"
    keys = frozenset({"image", "cond"})

    def defaults(self, part, missing, g):
        reqs = _requirements(part)
        size = self.size(part)
        cond = make_condition(
            reqs,
            batch_size=self.s.batch_size,
            size=size,
            num_classes=_num_classes(part),
            generator=g,
        )
        image = make_image(
            self.s.batch_size,
            size,
            channels=type(part).image_channels,
            generator=g,
            requires_grad=True,
        )
        return {"image": image, "cond": cond}

    def run(self, part, inp, seed):
        return part(inp["image"], inp["cond"])

    def validate(self, part, inp, out):
        b = self.s.batch_size
        if not isinstance(out, DiscriminatorOutput):
            return [
                (
                    f"forward returned {type(out).__name__}, not synth.DiscriminatorOutput",
                    "return DiscriminatorOutput(logits=[...], features=[[...]])",
                )
            ]
        probs: list[tuple[str, str]] = []
        if not isinstance(out.logits, list) or not out.logits:
            probs.append(
                (
                    "logits is not a non-empty list (one per scale)",
                    "return logits=[per-scale logits]",
                )
            )
        else:
            for i, t in enumerate(out.logits):
                if not isinstance(t, Tensor) or t.dim() < 2 or t.shape[0] != b:
                    got = tuple(t.shape) if isinstance(t, Tensor) else type(t).__name__
                    probs.append(
                        (f"logits[{i}] is {got}", f"logits are [B, 1, h, w] or [B, 1] with B={b}")
                    )
        if not isinstance(out.features, list) or any(not isinstance(f, list) for f in out.features):
            probs.append(
                (
                    "features is not a list (per scale) of lists of tensors",
                    "return features=[[layer activations] per scale]",
                )
            )
        elif out.features and isinstance(out.logits, list) and len(out.features) != len(out.logits):
            probs.append(
                (
                    f"{len(out.features)} feature lists for {len(out.logits)} scales",
                    "give one feature list per scale (or none at all)",
                )
            )
        bad = _nonfinite(_flatten(out))
        if bad:
            probs.append((f"NaN/Inf in {bad}", "check the discriminator's arithmetic"))
        return probs

    def grad_leaves(self, inp):
        x = inp["image"]
        return {"image": x} if isinstance(x, Tensor) and x.requires_grad else {}

    def compile_cases(self, part):
        inp = self.inputs(part)
        return [
            (
                "forward(image, cond)",
                lambda image, cond: part(image, cond),
                lambda: (inp["image"], inp["cond"]),
                True,
            )
        ]


def _overrides_distance(part: Part) -> bool:
    return type(part).distance is not Loss.distance


class _Loss(_Harness):
    kind = "loss"
    keys = frozenset({"batch"})

    def defaults(self, part, missing, g):
        cls = type(part)
        batch = make_loss_inputs(
            "generator",
            cls.needs,
            requires=_requirements(part),
            batch_size=self.s.batch_size,
            size=self.size(part),
            num_classes=_num_classes(part),
            with_disc="discriminator" in cls.roles,
            generator=g,
        )
        return {"batch": batch}

    def input_hint(self, part):
        return (
            "the default LossInputs carry real, fake and what `needs` declares "
            f"({sorted(type(part).needs)}; disc outputs also for the discriminator role): "
            "declare every input forward reads in `needs`, or define example_inputs() "
            "returning {'batch': LossInputs(...)}"
        )

    @staticmethod
    def phases(part) -> list[str]:
        return sorted(type(part).roles)

    def run(self, part, inp, seed):
        batch: LossInputs = inp["batch"]
        out: dict[str, Any] = {
            p: part(dataclasses.replace(batch, phase=p)) for p in self.phases(part)
        }
        if _overrides_distance(part):
            out["distance"] = part.distance(batch.fake.image, batch.real)
        return out

    def validate(self, part, inp, out):
        probs: list[tuple[str, str]] = []
        bad_roles = sorted(set(type(part).roles) - PHASES)
        if bad_roles or not type(part).roles:
            probs.append(
                (
                    f"roles = {sorted(type(part).roles)}",
                    f"roles is a non-empty subset of {sorted(PHASES)}",
                )
            )
        for p in self.phases(part):
            v = out.get(p)
            if not isinstance(v, Tensor) or v.dim() != 0 or not v.is_floating_point():
                got = tuple(v.shape) if isinstance(v, Tensor) else type(v).__name__
                probs.append(
                    (
                        f"phase {p!r}: returned {got}, expected a float scalar tensor",
                        "reduce the loss to a scalar (e.g. .mean())",
                    )
                )
            elif not bool(torch.isfinite(v.detach())):
                probs.append(
                    (f"phase {p!r}: loss is {float(v)}", "check logs/divisions for zero arguments")
                )
        if "distance" in out:
            d, b = out["distance"], self.s.batch_size
            if not isinstance(d, Tensor) or tuple(d.shape) != (b,):
                got = tuple(d.shape) if isinstance(d, Tensor) else type(d).__name__
                probs.append(
                    (
                        f"distance(x, y) is {got}, expected [B] = ({b},)",
                        "return one distance per sample",
                    )
                )
            elif _nonfinite({"d": d}):
                probs.append(("distance(x, y) has NaN/Inf values", "check the distance math"))
            else:
                real = inp["batch"].real
                with torch.no_grad():
                    same = part.distance(real, real)
                if float(same.detach().abs().max()) > 1e-4:
                    probs.append(
                        (
                            f"distance(x, x) = {same.detach().tolist()}, not 0",
                            "a distance between identical images is 0",
                        )
                    )
        return probs

    def extra_grad_problems(self, part):
        """Per phase, the loss must backpropagate into the inputs that require grad."""
        probs: list[tuple[str, str]] = []
        for p in self.phases(part):
            batch = dataclasses.replace(self.inputs(part)["batch"], phase=p)
            leaves = {
                k: t
                for k, t in _flatten(batch, "batch").items()
                if t.is_floating_point() and t.requires_grad and t.is_leaf
            }
            v = part(batch)
            if not isinstance(v, Tensor) or not v.requires_grad:
                probs.append(
                    (
                        f"phase {p!r}: the loss does not require grad",
                        "compute it from the inputs without .detach() or torch.no_grad()",
                    )
                )
                continue
            v.backward()
            got = [k for k, t in leaves.items() if t.grad is not None and bool((t.grad != 0).any())]
            if leaves and not got:
                probs.append(
                    (
                        f"phase {p!r}: no gradient reaches any input ({sorted(leaves)})",
                        "the loss must depend differentiably on what it trains "
                        "(fake image, discriminator outputs, ...)",
                    )
                )
        return probs

    def compile_cases(self, part):
        inp = self.inputs(part)
        cases = []
        for p in self.phases(part):
            batch = dataclasses.replace(inp["batch"], phase=p)
            cases.append(
                (
                    f"forward(batch[phase={p!r}])",
                    lambda b: part(b),
                    lambda batch=batch: (batch,),
                    True,
                )
            )
        if _overrides_distance(part):
            b = inp["batch"]
            cases.append(
                (
                    "distance(x, y)",
                    lambda x, y: part.distance(x, y),
                    lambda: (b.fake.image, b.real),
                    True,
                )
            )
        return cases


class _Sampler(_Harness):
    kind = "sampler"
    keys = frozenset({"model", "cond", "n", "kwargs", "output_batch"})
    applicable = frozenset(CHECKS) - {"compile"}
    na_reason = "samplers orchestrate modules in Python; compile the generator instead"

    def defaults(self, part, missing, g):
        from ._tiny import TINY_NUM_CLASSES, tiny_model

        out: dict[str, Any] = {"n": 2, "kwargs": {}}
        if "model" in missing:
            out["model"] = tiny_model(self.s.seed)
        out["cond"] = make_condition(
            {"label_map"},
            batch_size=self.s.batch_size,
            size=self.size(part),
            num_classes=TINY_NUM_CLASSES,
            generator=g,
        )
        return out

    def inputs(self, part):
        inp = super().inputs(part)
        inp.setdefault("output_batch", inp["cond"].batch_size * int(inp["n"]))
        return inp

    def stochastic(self, part):
        return bool(getattr(type(part), "stochastic", True))

    def input_hint(self, part):
        return (
            "samplers are run as sample(model, cond, n=2, generator=g) on a tiny model (label "
            "map with 4 classes, injector with a z prior and a posterior); define "
            "example_inputs() returning 'kwargs' (extra sample() arguments), 'model', 'n' or "
            "'output_batch' if the sampler needs more"
        )

    def run(self, part, inp, seed):
        g = torch.Generator().manual_seed(seed)
        return part.sample(
            inp["model"], inp["cond"], int(inp["n"]), generator=g, **dict(inp.get("kwargs") or {})
        )

    def validate(self, part, inp, out):
        if not isinstance(out, SynthesisOutput):
            return [
                (
                    f"sample returned {type(out).__name__}, not synth.SynthesisOutput",
                    "return SynthesisOutput(image=..., latents=...)",
                )
            ]
        probs: list[tuple[str, str]] = []
        nb = int(inp["output_batch"])
        h, w = inp["cond"].size
        img = out.image
        if (
            not isinstance(img, Tensor)
            or img.dim() != 4
            or img.shape[0] != nb
            or tuple(img.shape[-2:]) != (h, w)
        ):
            got = tuple(img.shape) if isinstance(img, Tensor) else type(img).__name__
            probs.append(
                (
                    f"image is {got}, expected [{nb}, C, {h}, {w}] (B·n ordered (b n))",
                    "return n samples per input as image [B·n, C, H, W] (declare another "
                    "batch with 'output_batch' in example_inputs)",
                )
            )
        elif _nonfinite({"image": img}):
            probs.append(("image has NaN/Inf values", "check the sampler's arithmetic"))
        if out.latents is None:
            if inp["model"].injector is not None:
                probs.append(
                    (
                        "the output has no latents",
                        "return the latents used, so each sample can be re-made",
                    )
                )
        else:
            wrong = {
                k: tuple(t.shape)
                for k, t in _flatten(out.latents, "latents").items()
                if t.dim() > 0 and t.shape[0] != nb
            }
            if wrong:
                probs.append(
                    (
                        f"latents do not match the {nb} images: {wrong}",
                        "return the latents of each returned image, batch first",
                    )
                )
        return probs


class _Metric(_Harness):
    kind = "metric"
    keys = frozenset({"updates"})
    applicable = frozenset({"build", "config_roundtrip", "forward", "determinism"})
    na_reason = "metrics accumulate under no_grad and are not compiled or cast"
    _IMAGE_ARGS = frozenset(
        {
            "fake",
            "real",
            "image",
            "images",
            "x",
            "y",
            "pred",
            "preds",
            "target",
            "targets",
            "reference",
            "generated",
        }
    )

    def defaults(self, part, missing, g):
        import inspect

        sig = inspect.signature(part.update)
        size = self.size(part)
        b = self.s.batch_size
        updates = []
        for _ in range(2):
            kwargs: dict[str, Any] = {}
            for name, prm in sig.parameters.items():
                if prm.kind in (prm.VAR_POSITIONAL, prm.VAR_KEYWORD):
                    continue
                if name in self._IMAGE_ARGS:
                    kwargs[name] = make_image(b, size, generator=g)
                elif name == "samples":
                    kwargs[name] = torch.tanh(torch.randn(b, 3, 3, *size, generator=g))
                elif name == "cond":
                    kwargs[name] = make_condition(
                        {"label_map"}, batch_size=b, size=size, generator=g
                    )
                elif prm.default is prm.empty:
                    raise ValueError(
                        f"cannot make an example for {type(part).__name__}.update argument "
                        f"{name!r}; define example_inputs() returning {{'updates': [...]}}"
                    )
            updates.append(kwargs)
        return {"updates": updates}

    def input_hint(self, part):
        return "define example_inputs() returning {'updates': [dict of update() arguments]}"

    def run(self, part, inp, seed):
        part.reset()
        for u in inp["updates"]:
            if isinstance(u, Mapping):
                part.update(**u)
            elif isinstance(u, tuple):
                part.update(*u)
            else:
                part.update(u)
        return part.compute()

    def validate(self, part, inp, out):
        if not isinstance(out, dict):
            return [
                (
                    f"compute() returned {type(out).__name__}, not a dict",
                    "return a dict of values plus a 'settings' entry",
                )
            ]
        probs: list[tuple[str, str]] = []
        if not isinstance(out.get("settings"), dict):
            probs.append(
                (
                    "compute() has no 'settings' dict",
                    "record the settings used (backbone, weights, resolution, n) under 'settings'",
                )
            )
        bad = _nonfinite(_flatten({k: v for k, v in out.items() if k != "settings"}))
        if bad:
            probs.append((f"NaN/Inf in {bad}", "check the metric's arithmetic"))
        return probs


class _SGDUpdater:
    """The kit's stand-in for the Trainer's updater: plain SGD, no AMP, one process."""

    def __init__(self, model: nn.Module) -> None:
        self.model, self.step, self.d_steps = model, 0, 1
        self.updated: list[str] = []

    def autocast(self) -> contextlib.AbstractContextManager:
        return contextlib.nullcontext()

    def update(self, network: str | tuple[str, ...], loss: Tensor) -> None:
        names = [network] if isinstance(network, str) else list(network)
        nets = {n: getattr(self.model, n, None) for n in names}
        params = [
            p
            for net in nets.values()
            if isinstance(net, nn.Module)
            for p in net.parameters()
            if p.requires_grad
        ]
        if not params:
            return
        for p in params:
            p.grad = None
        loss.backward()
        with torch.no_grad():
            for p in params:
                if p.grad is not None:
                    p.add_(p.grad, alpha=-1e-2)
        self.updated.extend(n for n, net in nets.items() if isinstance(net, nn.Module))


class _Trainer(_Harness):
    kind = "trainer"
    keys = frozenset({"model", "cond", "real"})
    applicable = frozenset({"build", "config_roundtrip", "forward", "determinism"})
    na_reason = "objectives are checked by one step on a tiny model (no own parameters)"

    def defaults(self, part, missing, g):
        from ._tiny import TINY_NUM_CLASSES, tiny_gan_model

        b, size = self.s.batch_size, self.size(part)
        return {
            "model": tiny_gan_model(self.s.seed),
            "cond": make_condition(
                {"label_map"}, batch_size=b, size=size, generator=g, num_classes=TINY_NUM_CLASSES
            ),
            "real": make_image(b, size, generator=g),
        }

    def input_hint(self, part):
        return (
            "the default is a tiny GAN (generator, injector with posterior, discriminator, "
            "hinge + L1); define example_inputs() returning {'model', 'cond', 'real'} if the "
            "objective needs other parts"
        )

    def run(self, part, inp, seed):
        model = copy.deepcopy(inp["model"]).train()
        before = {k: v.detach().clone() for k, v in model.state_dict().items()}
        updater = _SGDUpdater(model)
        with torch.enable_grad(), torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            logs = part.step(model, inp["cond"], inp["real"], updater)
        after = model.state_dict()
        changed = sorted({k.split(".")[0] for k in before if not torch.equal(before[k], after[k])})
        return {"logs": logs, "changed": changed, "updated": updater.updated}

    def validate(self, part, inp, out):
        probs: list[tuple[str, str]] = []
        logs = out["logs"]
        if not isinstance(logs, Mapping) or not logs:
            return [
                (
                    f"step() returned {type(logs).__name__} {logs!r:.60}, not a dict of scalars",
                    "return {'<phase>/<loss>': detached 0-d tensor, ...}",
                )
            ]
        bad = {
            k: type(v).__name__
            for k, v in logs.items()
            if not (isinstance(v, Tensor) and v.dim() == 0)
        }
        if bad:
            probs.append(
                (f"logged values {bad} are not 0-d tensors", "log value.detach() of each loss")
            )
        grads = [k for k, v in logs.items() if isinstance(v, Tensor) and v.requires_grad]
        if grads:
            probs.append(
                (f"logged values {grads} still require grad", "log value.detach(), not value")
            )
        nonfinite = _nonfinite({k: v for k, v in logs.items() if isinstance(v, Tensor)})
        if nonfinite:
            probs.append((f"NaN/Inf in logged values {nonfinite}", "check the losses"))
        if not out["updated"]:
            probs.append(
                (
                    "step() never called updater.update(...), so nothing trains",
                    "apply each network's loss with updater.update(network, loss)",
                )
            )
        elif not out["changed"]:
            probs.append(
                (
                    f"updater.update was called for {out['updated']} but no weight changed",
                    "the loss passed to update() must depend on that network's parameters",
                )
            )
        return probs


HARNESSES: dict[str, type[_Harness]] = {
    h.kind: h
    for h in (
        _Conditioning,
        _Injector,
        _Generator,
        _Discriminator,
        _Loss,
        _Sampler,
        _Metric,
        _Trainer,
    )
}
assert set(HARNESSES) == set(KINDS)


# --------------------------------------------------------------------------- checks


def _check_build(s: _Setup, h: _Harness, kind: str, holder: list[Part]) -> None:
    part = s.build()
    holder.append(part)
    cls = type(part)
    probs = _Problems()
    if not isinstance(part, KINDS[kind]):
        probs.add(
            f"built a {cls.__name__}, not a synth.{KINDS[kind].__name__}",
            f"derive the class from synth.{KINDS[kind].__name__}",
        )
    if not isinstance(part.config, cls.Config):
        probs.add(
            f"part.config is {type(part.config).__name__}, not {cls.__name__}.Config",
            "call super().__init__(config, **kwargs) first in __init__",
        )
    if not issubclass(cls.Config, PartConfig):
        probs.add(
            f"{cls.__name__}.Config does not derive from synth.PartConfig",
            "class Config(synth.PartConfig): ...",
        )
    elif cls.Config.model_config.get("extra") != "forbid":
        probs.add(
            f"{cls.__name__}.Config accepts unknown keys (extra="
            f"{cls.Config.model_config.get('extra')!r})",
            "keep model_config from synth.PartConfig (extra='forbid')",
        )
    if getattr(part, "name", None) != s.name:
        probs.add(
            f"part.name is {getattr(part, 'name', None)!r}, not {s.name!r}",
            "do not overwrite `name` in __init__",
        )

    def known(fields: Iterable[str], allowed: Iterable[str]) -> list[str]:
        return sorted(f for f in fields if f not in set(allowed) and "." not in f)

    reads = known(_requirements(part), (*CONDITION_FIELDS, *LATENT_FIELDS))
    if reads:
        probs.add(
            f"requires names unknown field(s) {reads}",
            f"use Condition fields {list(CONDITION_FIELDS)}, Latents fields "
            f"{list(LATENT_FIELDS)} or plugin extras named '<plugin>.<what>'",
        )
    if kind == "injector":
        bad = known(cls.provided(part.config), LATENT_FIELDS)
        if bad:
            probs.add(
                f"provides names unknown latent field(s) {bad}",
                f"use Latents fields {list(LATENT_FIELDS)} or '<plugin>.<what>' extras",
            )
    if kind == "loss":
        bad = known(cls.needs, LOSS_NEEDS)
        if bad:
            probs.add(f"needs names unknown input(s) {bad}", f"use {sorted(LOSS_NEEDS)}")
    probs.raise_if_any()


def _check_config_roundtrip(s: _Setup, h: _Harness, part: Part) -> None:
    cfg = part.config
    Config = type(cfg)
    try:
        text = cfg.model_dump_json()
    except Exception as e:
        _fail(
            f"config.model_dump_json() raised {_brief(e)}",
            "give every Config field a JSON-serialisable type",
        )
    try:
        back = Config.model_validate_json(text)
    except Exception as e:
        _fail(
            f"{Config.__qualname__}.model_validate_json(config.model_dump_json()) raised "
            f"{_brief(e)} on {text}",
            "make every field validate from its own JSON form",
        )
    if back != cfg:
        fields = [k for k in Config.model_fields if getattr(back, k, None) != getattr(cfg, k, None)]
        shown = (
            ", ".join(
                f"{k}: {getattr(cfg, k, None)!r} -> {getattr(back, k, None)!r}" for k in fields
            )
            or text
        )
        _fail(
            f"the config does not survive a JSON round trip ({shown})",
            "use JSON-representable field types (int, float, str, bool, list, dict, "
            "PartSpec) and annotate them precisely (e.g. tuple[int, int], not Any), or add a "
            "validator that restores the value",
        )
    try:
        rebuilt = s.registry.build({"type": s.name, **json.loads(text)})
    except Exception as e:
        _fail(
            f"rebuilding from the JSON config raised {_brief(e)}",
            "a part must build from its own dumped config",
        )
    if rebuilt.config != cfg:
        _fail(
            f"rebuilding from the JSON config gave {rebuilt.config!r}, not {cfg!r}",
            "do not change the config in __init__; derive values in attributes instead",
        )


def _check_forward(s: _Setup, h: _Harness, part: Part) -> None:
    _mode(part, True)
    inp = h.inputs(part)
    out = h.run(part, inp, s.seed)
    probs = _Problems()
    probs.extend(h.validate(part, inp, out))
    probs.raise_if_any()


def _grad_report(part: nn.Module) -> tuple[list[str], list[str], list[str]]:
    none, nonfinite, zero = [], [], []
    for n, p in part.named_parameters():
        if not p.requires_grad:
            continue
        if p.grad is None:
            none.append(n)
        elif not bool(torch.isfinite(p.grad).all()):
            nonfinite.append(n)
        elif not bool((p.grad != 0).any()):
            zero.append(n)
    return none, nonfinite, zero


def _backprop(s: _Setup, h: _Harness, part: Part) -> tuple[dict[str, Tensor], bool]:
    """Forward in train mode and backward a projection of the output."""
    _mode(part, True)
    if isinstance(part, nn.Module):
        part.zero_grad(set_to_none=True)
    inp = h.inputs(part)
    out = h.run(part, inp, s.seed)
    scalar = _projection(_flatten(out), s.seed + 7)
    leaves = h.grad_leaves(inp)
    if scalar is None or not scalar.requires_grad:
        return leaves, False
    scalar.backward()
    return leaves, True


def _check_gradients(s: _Setup, h: _Harness, part: Part) -> None:
    trainable = [
        n
        for n, p in (part.named_parameters() if isinstance(part, nn.Module) else ())
        if p.requires_grad
    ]
    if h.kind in ("sampler", "metric", "trainer") and not trainable:
        raise _NotApplicable(f"no trainable parameters ({h.kind})")
    leaves, ran = _backprop(s, h, part)
    probs = _Problems()
    if not ran:
        if trainable or leaves:
            _fail(
                "the output does not require grad although the part has trainable "
                f"parameters {trainable[:5]} / differentiable inputs {sorted(leaves)}",
                "do not run forward under torch.no_grad() or .detach() its result",
            )
        probs.extend(h.extra_grad_problems(part))
        probs.raise_if_any()
        raise _NotApplicable("no trainable parameters and no differentiable inputs")
    if trainable:
        none, nonfinite, zero = _grad_report(part)
        if zero:
            # Zero-initialised layers (e.g. a modulation initialised to identity) block
            # gradients at init; perturb every parameter and keep only the still-zero ones.
            fresh = s.build()
            with torch.no_grad():
                g = s.generator(11)
                for p in fresh.parameters():
                    if p.is_floating_point():
                        p.add_(0.1 * torch.randn(p.shape, generator=g).to(p))
            _backprop(s, h, fresh)
            _, _, zero2 = _grad_report(fresh)
            zero = [n for n in zero if n in zero2]
        if none:
            probs.add(
                f"parameters {none} received no gradient — they are not used in forward "
                "(or only through .detach()/no_grad)",
                "remove them, use them, or set requires_grad=False if they are frozen",
            )
        if nonfinite:
            probs.add(
                f"parameters {nonfinite} received NaN/Inf gradients",
                "check for log(0), sqrt(0), division by zero or overflow in forward",
            )
        if zero:
            probs.add(
                f"parameters {zero} received an all-zero gradient, also after perturbing "
                "every parameter — they do not affect the output",
                "remove them or set requires_grad=False",
            )
    for name, t in leaves.items():
        if t.grad is None or not bool((t.grad != 0).any()):
            probs.add(
                f"no gradient reaches the input {name!r}",
                "do not detach the input; parts upstream train through this one",
            )
    probs.extend(h.extra_grad_problems(part))
    probs.raise_if_any()


def _check_save_load(s: _Setup, h: _Harness, part: Part) -> None:
    from safetensors.torch import load as st_load
    from safetensors.torch import save as st_save

    if not isinstance(part, nn.Module):
        raise _NotApplicable(f"{type(part).__name__} is not an nn.Module (no state)")
    with torch.no_grad():  # one training forward so running statistics leave their init
        _mode(part, True)
        h.run(part, h.inputs(part), s.seed)
    state = {}
    bad = []
    for k, v in part.state_dict().items():
        if isinstance(v, Tensor):
            state[k] = v.detach().cpu().clone().contiguous()
        else:
            bad.append(k)
    if bad:
        _fail(
            f"state_dict entries {bad} are not tensors, so safetensors cannot store them",
            "keep state in parameters and buffers",
        )
    try:
        blob = st_save(state)
        loaded = st_load(blob)
    except Exception as e:
        _fail(
            f"safetensors could not save/load the state: {_brief(e)}",
            "keep state in plain tensors (no sparse/quantized/meta tensors)",
        )
    fresh = s.build(seed_offset=1)
    result = fresh.load_state_dict(loaded, strict=False)
    if result.missing_keys or result.unexpected_keys:
        _fail(
            f"loading into a freshly built part: missing keys {result.missing_keys}, "
            f"unexpected keys {result.unexpected_keys}",
            "build the same modules from the same config every time",
        )
    _mode(part, False)
    _mode(fresh, False)
    with torch.no_grad():
        a = _flatten(h.run(part, h.inputs(part), s.seed))
        again = _flatten(h.run(part, h.inputs(part), s.seed))
        b = _flatten(h.run(fresh, h.inputs(fresh), s.seed))
    if _compare(a, again):
        raise _Skipped(
            "not comparable: the part does not reproduce its own outputs (see determinism)"
        )
    diffs = _compare(a, b, exact=True)
    if diffs:
        _fail(
            "outputs differ after loading the saved state into a freshly built part (built "
            f"under another seed): {'; '.join(diffs[:4])}",
            "some state is not in state_dict: register tensors drawn at init with "
            "register_buffer(name, t) (persistent) or as nn.Parameter",
        )


def _perturb_global_rng() -> None:
    torch.rand(17)


def _check_determinism(s: _Setup, h: _Harness, part: Part) -> None:
    probs = _Problems()
    a, b = s.build(), s.build()
    sa, sb = _state(a), _state(b)
    differ = sorted(k for k in sa if k not in sb or not torch.equal(sa[k], sb[k]))
    if differ:
        probs.add(
            f"parameters/buffers {differ[:8]} differ between two builds under "
            f"torch.manual_seed({s.seed})",
            "initialise from torch's global RNG only (no numpy/random/time-based init)",
        )
    _mode(a, False)
    _mode(b, False)
    with torch.no_grad():
        o1 = _flatten(h.run(a, h.inputs(a), s.seed))
        _perturb_global_rng()
        o2 = _flatten(h.run(a, h.inputs(a), s.seed))
        if not differ:
            o3 = _flatten(h.run(b, h.inputs(b), s.seed))
        stochastic = h.stochastic(a)
        o4 = _flatten(h.run(a, h.inputs(a), s.seed + 1)) if stochastic else None
    diffs = _compare(o1, o2)
    if diffs:
        if stochastic:
            probs.add(
                "the same torch.Generator seed gave different outputs: " + "; ".join(diffs[:4]),
                "draw every random number with generator=generator (not the global RNG)",
            )
        else:
            probs.add(
                "the same input twice (eval mode) gave different outputs: " + "; ".join(diffs[:4]),
                "forward must be a deterministic function of its inputs and state: take "
                "randomness through Latents (e.g. latents.spatial from an injector seeded "
                "by a torch.Generator) instead of torch.rand/randn in forward",
            )
    elif not differ:
        diffs = _compare(o1, o3)
        if diffs:
            probs.add(
                "two builds under the same seed give different outputs: " + "; ".join(diffs[:4]),
                "state drawn at init must come from torch's global RNG and live in "
                "parameters or buffers",
            )
    if o4 is not None and not _compare(o1, o4) and any(t.numel() for t in o1.values()):
        probs.add(
            "different torch.Generator seeds gave identical outputs: the generator "
            "argument is ignored",
            "draw with generator=generator; if the part is deterministic by design, set "
            "the class attribute stochastic = False",
        )
    probs.raise_if_any()


def _check_dtypes(s: _Setup, h: _Harness, part: Part) -> None:
    probs = _Problems()
    _mode(part, False)
    with torch.no_grad():
        out = _flatten(h.run(part, h.inputs(part), s.seed))
    wrong = {
        k: str(t.dtype)
        for k, t in out.items()
        if t.is_floating_point() and t.dtype != torch.float32
    }
    if wrong:
        probs.add(
            f"fp32 inputs gave non-fp32 outputs {wrong}",
            "keep fp32 in, fp32 out (no .double()/.half() in forward)",
        )
    try:
        with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
            out16 = _flatten(h.run(part, h.inputs(part), s.seed))
    except Exception as e:
        _fail(
            f"bf16 autocast forward raised {_brief(e)}",
            "make forward autocast-safe: cast explicitly where dtypes must agree",
        )
    bad = _nonfinite(out16)
    if bad:
        probs.add(
            f"bf16 autocast forward gave NaN/Inf in {bad}",
            "compute statistics (norms, variances, exp/log) in fp32 under autocast",
        )
    probs.raise_if_any()


def _check_compile(s: _Setup, h: _Harness, part: Part) -> None:
    import torch._dynamo

    cases = h.compile_cases(part)
    _mode(part, False)
    probs = _Problems()
    for label, fn, make_args, exact in cases:
        torch._dynamo.reset()
        try:
            torch.manual_seed(s.seed)
            eager = _flatten(fn(*make_args()))
            compiled = torch.compile(fn, fullgraph=True, backend=s.compile_backend)
            torch.manual_seed(s.seed)
            got = _flatten(compiled(*make_args()))
        except Exception as e:
            probs.add(
                f"{label} does not compile with fullgraph=True: {_graph_break(e)}",
                "remove the graph break: no .item()/.tolist()/print/numpy or Python "
                "branching on tensor values in forward (use tensor ops such as "
                "torch.where), or pass skip=('compile',) if it cannot be compiled",
            )
            continue
        finally:
            torch._dynamo.reset()
        diffs = _compare(
            eager, got, exact=False, values=exact, rtol=COMPILE_RTOL, atol=COMPILE_ATOL
        )
        bad = _nonfinite(got)
        if diffs:
            probs.add(
                f"{label}: compiled output differs from eager: {'; '.join(diffs[:4])}",
                "avoid Python-side state that changes between calls",
            )
        if bad:
            probs.add(f"{label}: compiled output has NaN/Inf in {bad}", "")
    probs.raise_if_any()


_CHECK_FUNCS = {
    "config_roundtrip": _check_config_roundtrip,
    "forward": _check_forward,
    "gradients": _check_gradients,
    "save_load": _check_save_load,
    "determinism": _check_determinism,
    "dtypes": _check_dtypes,
    "compile": _check_compile,
}


def check_part(
    name: str,
    *,
    registry: Registry | None = None,
    seed: int = 0,
    batch_size: int = 2,
    size: int | tuple[int, int] = 32,
    compile_backend: str = "eager",
    skip: Iterable[str] = (),
    example_inputs: Mapping[str, Any] | Callable[..., Mapping[str, Any]] | None = None,
    raise_on_failure: bool = True,
    config: Mapping[str, Any] | None = None,
    **params: Any,
) -> ConformanceReport:
    """Run the conformance checks (DESIGN §8) on the registered part ``name``.

    Builds the part with ``registry.build(name, **params)`` (runtime arguments such as
    ``channels=8`` may be given here) and runs the checks in :data:`CHECKS`. All checks run;
    failures are collected and raised together as :class:`ConformanceError` (unless
    ``raise_on_failure=False``). Returns the :class:`ConformanceReport`.

    Args:
        name: registered part name, e.g. ``"myplugin.block"``.
        registry: where to look it up (default: the process-wide registry).
        seed: seeds the builds (``torch.manual_seed``) and the example inputs.
        batch_size, size: of the example inputs (``size`` is ``H = W`` or ``(H, W)``).
        compile_backend: backend of the ``compile`` check (``"eager"``: tracing only, fast;
            ``"inductor"`` to also generate kernels).
        skip: names of checks not to run (reported as skipped, never as passed).
        example_inputs: overrides the example inputs: a dict, or a callable with the
            ``example_inputs`` protocol (see :mod:`synth.testing`).
        raise_on_failure: when False, return the report with failures instead of raising.
        config: config values whose names clash with this function's own arguments (a
            ``size`` or ``seed`` field), merged with ``params``.
        **params: the part's config (and runtime arguments).
    """
    skip = tuple(skip)
    unknown = sorted(set(skip) - set(CHECKS))
    if unknown:
        raise ValueError(f"unknown check(s) {unknown} in skip; checks are {list(CHECKS)}")
    if "build" in skip:
        raise ValueError("the 'build' check cannot be skipped: every other check needs the part")
    params = {**dict(config or {}), **params}
    reg = registry if registry is not None else get_registry()
    kind = reg.get(name).kind
    size2 = (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))
    setup = _Setup(
        name, reg, seed, batch_size, size2, dict(params), compile_backend, example_inputs
    )
    harness = HARNESSES[kind](setup)
    report = ConformanceReport(name, kind, dict(params))

    def record(check: str, fn: Callable[[], Any]) -> Any:
        try:
            value = fn()
        except _Failed as e:
            observed = "; ".join(o for o, _ in e.problems)
            fixes = []
            for _, f in e.problems:
                if f and f not in fixes:
                    fixes.append(f)
            report.checks[check] = CheckResult(check, "failed", observed, "; ".join(fixes))
            return None
        except _NotApplicable as e:
            report.checks[check] = CheckResult(check, "n/a", str(e))
            return None
        except _Skipped as e:
            report.checks[check] = CheckResult(check, "skipped", str(e))
            return None
        except Exception as e:
            report.checks[check] = CheckResult(
                check,
                "failed",
                f"raised {_brief(e)}",
                harness.input_hint(holder[0]) if holder else "see the error",
            )
            return None
        report.checks[check] = CheckResult(check, "passed")
        return value

    with torch.random.fork_rng(devices=[]), using_registry(reg):
        holder: list[Part] = []
        record("build", lambda: _check_build(setup, harness, kind, holder))
        part = holder[0] if holder else None
        forward_ok = True
        for check in CHECKS[1:]:
            if check in skip:
                report.checks[check] = CheckResult(check, "skipped", f"skip={skip!r}")
                continue
            if check not in harness.applicable:
                report.checks[check] = CheckResult(check, "n/a", harness.na_reason)
                continue
            if part is None:
                report.checks[check] = CheckResult(check, "skipped", "not run: build failed")
                continue
            if not forward_ok and check != "config_roundtrip":
                report.checks[check] = CheckResult(
                    check, "skipped", "not run: forward raised an error"
                )
                continue
            record(check, lambda check=check: _CHECK_FUNCS[check](setup, harness, part))
            if check == "forward" and report.checks[check].status == "failed":
                forward_ok = not report.checks[check].detail.startswith("raised ")
    if raise_on_failure:
        report.raise_for_failures()
    return report
