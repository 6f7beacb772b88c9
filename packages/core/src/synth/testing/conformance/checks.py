"""The checks: kind-agnostic, each runs a part through its kind's harness."""

from __future__ import annotations

import json
from collections.abc import Iterable

import torch
from torch import Tensor, nn

from ...condition import CONDITION_FIELDS
from ...config import PartConfig
from ...latents import LATENT_FIELDS
from ...parts.base import KINDS, Part
from .constants import COMPILE_ATOL, COMPILE_RTOL, LOSS_NEEDS
from .harness import _Harness, _requirements, _Setup
from .report import _fail, _NotApplicable, _Problems, _Skipped
from .tensors import _compare, _flatten, _mode, _nonfinite, _projection, _state
from .tracebacks import _brief, _graph_break


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
    if h.kind in ("sampler", "metric", "objective") and not trainable:
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
