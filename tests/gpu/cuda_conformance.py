"""The conformance kit on CUDA: a pytest plugin that adds a CUDA stage to every ``check_part``.

``python -m pytest -p tests.gpu.cuda_conformance --cuda-conformance-only tests/...`` (what
``make test-gpu`` runs) wraps :func:`synth.testing.check_part` so that each call the test
suite already makes — core's parts table and every plugin's, i.e. every registered part with
the configurations its own tests chose — first runs the usual CPU checks and then, when those
pass, the same part and example inputs on CUDA:

- ``fp32``: eval forward on CUDA (TF32 off) equals the CPU forward (rtol/atol 1e-3; shapes only
  for stochastic parts, whose CUDA generator draws other numbers);
- ``gradients``: a train-mode forward and backward on CUDA give finite gradients;
- ``bf16``: the forward under ``torch.autocast(DEVICE.type, dtype=torch.bfloat16)`` is finite;
- ``compile``: every compile case of the kit (``fullgraph=True``) with the ``inductor``
  backend on CUDA matches eager on CUDA (rtol 1e-3, atol 1e-3).

``--cuda-conformance-only`` keeps only the tests whose function body calls ``check_part``.
Without CUDA the plugin changes nothing. ``SYNTH_CONFORMANCE_DEVICE=cpu`` (and
``SYNTH_CONFORMANCE_STAGES=fp32,gradients,bf16``) run the same stage on the CPU: a dry run of
this plugin on a machine without a GPU.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import os
from collections.abc import Mapping
from typing import Any

import pytest
import torch
from torch import Tensor, nn

import synth.testing
import synth.testing.conformance as conformance
from synth.registry import get_registry, using_registry
from synth.testing.conformance.harness import _Setup
from synth.testing.conformance.kinds import HARNESSES
from synth.testing.conformance.tensors import _compare, _flatten, _nonfinite, _projection

RTOL = ATOL = 1e-3
DEVICE = torch.device(os.environ.get("SYNTH_CONFORMANCE_DEVICE", "cuda"))
STAGES = tuple(
    s.strip()
    for s in os.environ.get("SYNTH_CONFORMANCE_STAGES", "fp32,gradients,bf16,compile").split(",")
    if s.strip()
)


class CudaConformanceError(AssertionError):
    """The CUDA stage found problems (the CPU checks passed)."""


def to_device(obj: Any, device: torch.device) -> Any:
    """``obj`` with every tensor, module, Condition and Latents on ``device`` (leaves stay
    leaves: ``requires_grad`` is kept)."""
    if isinstance(obj, Tensor):
        return obj.detach().to(device).requires_grad_(obj.requires_grad)
    if isinstance(obj, nn.Module):  # in place: callers pass fresh inputs (deepcopy may fail)
        return obj.to(device)
    if isinstance(obj, (list, tuple)):
        return type(obj)(to_device(v, device) for v in obj)
    if isinstance(obj, Mapping):
        return {k: to_device(v, device) for k, v in obj.items()}
    if hasattr(obj, "to") and callable(obj.to) and not isinstance(obj, type):
        return obj.to(device)
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        changes = {
            f.name: to_device(getattr(obj, f.name), device)
            for f in dataclasses.fields(obj)
            if f.init
        }
        return dataclasses.replace(obj, **changes)
    return obj


def _run(h: Any, part: Any, inp: dict[str, Any], seed: int, device: torch.device) -> Any:
    """The kind's run, with the ``torch.Generator`` on ``device`` where the kind draws."""
    if h.kind == "injector":
        out: dict[str, Any] = {
            "prior": part.prior(inp["cond"], torch.Generator(device=device).manual_seed(seed))
        }
        if type(part).has_posterior:
            torch.manual_seed(seed)
            out["posterior"] = part.posterior(inp["image"], inp["cond"])
        return out
    if h.kind == "sampler":
        g = torch.Generator(device=device).manual_seed(seed)
        kwargs = dict(inp.get("kwargs") or {})
        return part(inp["model"], inp["cond"], int(inp["n"]), generator=g, **kwargs)
    return h.run(part, inp, seed)


def cuda_problems(
    name: str,
    *,
    registry: Any = None,
    seed: int = 0,
    batch_size: int = 2,
    size: int | tuple[int, int] = 32,
    example_inputs: Any = None,
    config: Mapping[str, Any] | None = None,
    skip: Any = (),
    stages: tuple[str, ...] = STAGES,
    **params: Any,
) -> list[str]:
    """The problems of ``name`` on CUDA (empty: it passed), one readable line each. TF32 is
    off meanwhile (cuDNN convolutions in true fp32), so CUDA and CPU agree to rounding."""
    flags = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    try:
        return _cuda_problems(
            name,
            registry=registry,
            seed=seed,
            batch_size=batch_size,
            size=size,
            example_inputs=example_inputs,
            config=config,
            skip=skip,
            stages=stages,
            **params,
        )
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = flags


def _cuda_problems(
    name: str,
    *,
    registry: Any,
    seed: int,
    batch_size: int,
    size: int | tuple[int, int],
    example_inputs: Any,
    config: Mapping[str, Any] | None,
    skip: Any,
    stages: tuple[str, ...],
    **params: Any,
) -> list[str]:
    params = {**dict(config or {}), **params}
    reg = registry if registry is not None else get_registry()
    kind = reg.get(name).kind
    size2 = (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))
    setup = _Setup(name, reg, seed, batch_size, size2, params, "inductor", example_inputs)
    h = HARNESSES[kind](setup)
    if "forward" not in h.applicable:
        return []
    problems: list[str] = []
    cuda = [DEVICE] if DEVICE.type == "cuda" else []
    with torch.random.fork_rng(devices=cuda), using_registry(reg):
        part = setup.build()
        if isinstance(part, nn.Module):
            part.eval()
        inp = h.inputs(part)
        with torch.no_grad():
            ref = _flatten(_run(h, part, inp, seed, torch.device("cpu")))
        gpart = setup.build()  # same seed: the same weights (the kit's determinism check)
        if isinstance(gpart, nn.Module):
            gpart.load_state_dict(part.state_dict())
            gpart.to(DEVICE).eval()
        ginp = to_device(h.inputs(gpart), DEVICE)
        stochastic = h.stochastic(part)
        if "fp32" in stages:
            try:
                with torch.no_grad():
                    got = _flatten(_run(h, gpart, ginp, seed, DEVICE))
                cpu_got = {k: v.detach().cpu() for k, v in got.items()}
                diffs = _compare(
                    ref, cpu_got, exact=False, values=not stochastic, rtol=RTOL, atol=ATOL
                )
                problems += [f"fp32 CUDA vs CPU: {d}" for d in diffs[:4]]
                problems += [f"fp32 CUDA: NaN/Inf in {k}" for k in _nonfinite(got)]
            except Exception as e:
                problems.append(f"fp32 forward on CUDA raised {type(e).__name__}: {e}")
        if "gradients" in stages and isinstance(gpart, nn.Module) and kind != "metric":
            try:
                gpart.train()
                gpart.zero_grad(set_to_none=True)
                scalar = _projection(
                    _flatten(_run(h, gpart, to_device(h.inputs(gpart), DEVICE), seed, DEVICE)),
                    seed + 7,
                )
                if scalar is not None and scalar.requires_grad:
                    scalar.backward()
                    bad = [
                        n
                        for n, p in gpart.named_parameters()
                        if p.grad is not None and not bool(torch.isfinite(p.grad).all())
                    ]
                    if bad:
                        problems.append(f"gradients on CUDA: NaN/Inf in {bad[:5]}")
            except Exception as e:
                problems.append(f"backward on CUDA raised {type(e).__name__}: {e}")
            finally:
                gpart.eval()
        if "bf16" in stages:
            try:
                with torch.no_grad(), torch.autocast(DEVICE.type, dtype=torch.bfloat16):
                    out16 = _flatten(
                        _run(h, gpart, to_device(h.inputs(gpart), DEVICE), seed, DEVICE)
                    )
                problems += [f"bf16 autocast on CUDA: NaN/Inf in {k}" for k in _nonfinite(out16)]
            except Exception as e:
                problems.append(f"bf16 autocast forward on CUDA raised {type(e).__name__}: {e}")
        if "compile" in stages and "compile" in h.applicable and "compile" not in tuple(skip):
            problems += _compile_problems(h, gpart, seed)
    return problems


def _compile_problems(h: Any, gpart: Any, seed: int) -> list[str]:
    import torch._dynamo

    problems: list[str] = []
    try:
        cases = h.compile_cases(gpart)
    except Exception as e:  # the kit's n/a (e.g. nothing to compile) or a real problem
        if type(e).__name__ == "_NotApplicable":
            return []
        return [f"compile cases raised {type(e).__name__}: {e}"]
    for label, fn, make_args, exact in cases:
        torch._dynamo.reset()
        try:
            torch.manual_seed(seed)
            with torch.no_grad():
                eager = _flatten(fn(*to_device(make_args(), DEVICE)))
                compiled = torch.compile(fn, fullgraph=True, backend="inductor")
                torch.manual_seed(seed)
                got = _flatten(compiled(*to_device(make_args(), DEVICE)))
        except Exception as e:
            problems.append(f"{label}: inductor compile on CUDA raised {type(e).__name__}: {e}")
            continue
        finally:
            torch._dynamo.reset()
        diffs = _compare(eager, got, exact=False, values=exact, rtol=RTOL, atol=ATOL)
        problems += [f"{label}: inductor on CUDA vs eager: {d}" for d in diffs[:4]]
    return problems


def _wrap(original: Any) -> Any:
    @functools.wraps(original)
    def check_part(name: str, **kwargs: Any) -> Any:
        report = original(name, **kwargs)
        if report.failures:
            return report
        keep = {k: v for k, v in kwargs.items() if k not in ("raise_on_failure", "compile_backend")}
        problems = cuda_problems(name, **keep)
        if problems:
            raise CudaConformanceError(
                f"{name} {kwargs.get('config') or ''} passes on CPU but not on CUDA:\n  "
                + "\n  ".join(problems)
            )
        return report

    check_part.__cuda_wrapped__ = True  # type: ignore[attr-defined]
    return check_part


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--cuda-conformance-only",
        action="store_true",
        help="keep only the tests that call synth.testing.check_part (run on CPU, then CUDA)",
    )


def pytest_configure(config: pytest.Config) -> None:
    if DEVICE.type == "cuda" and not torch.cuda.is_available():
        return
    if getattr(synth.testing.check_part, "__cuda_wrapped__", False):
        return
    wrapped = _wrap(synth.testing.check_part)
    synth.testing.check_part = wrapped
    conformance.check_part = wrapped


def _calls_check_part(item: pytest.Item) -> bool:
    fn = getattr(item, "function", None)
    try:
        return fn is not None and "check_part(" in inspect.getsource(fn)
    except (OSError, TypeError):
        return False


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not config.getoption("--cuda-conformance-only"):
        return
    keep = [i for i in items if _calls_check_part(i)]
    config.hook.pytest_deselected(items=[i for i in items if i not in keep])
    items[:] = keep
