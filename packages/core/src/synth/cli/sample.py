"""``synth sample MODEL_DIR``: draw samples from a saved model into PNG files.

Inputs come from a label-map PNG, a conditioning image (``--image``; an alpha channel is the
known-pixel mask) or items of a data set (``--data SPEC --index I``), read with
:mod:`synth.data`'s loaders.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .console import CLIError, out
from .console import device as parse_device
from .inputs import dataset_arg, load_model_dir

__all__ = ["add_parser", "cmd_sample"]


# --------------------------------------------------------------------------- inputs


def _read(loader: Callable[..., Any], path: str, *args: Any) -> Any:
    """``loader(path, *args)`` with its errors as ``synth: error`` lines."""
    try:
        return loader(path, *args)
    except FileNotFoundError:
        raise CLIError(f"{path}: no such file") from None
    except ValueError as e:
        raise CLIError(str(e)) from None


def _model_num_classes(model: Any, given: int | None, what: str) -> int:
    k = given if given is not None else model.generator.num_classes
    if k is None:
        raise CLIError(
            f"{what}: this model's generator takes no label map (its config has no "
            "num_classes); give --num-classes K if it does read one, or sample from --image or "
            "--data"
        )
    return int(k)


def _label_map_condition(args: argparse.Namespace, model: Any) -> Any:
    from ..condition import Condition
    from ..data.transforms import load_label_map
    from ..nn import ops

    path = args.label_map
    ids = _read(load_label_map, path)[None]
    k = _model_num_classes(model, args.num_classes, path)
    if args.size:
        ids = ops.resize_labels(ids, tuple(args.size))
    bad = (ids < 0) | (ids >= k)
    if bool(bad.any()):
        values = ids[bad].unique().tolist()
        shown = ", ".join(map(str, values[:8])) + (", ..." if len(values) > 8 else "")
        raise CLIError(
            f"{path} has class ids [{shown}] outside [0, {k}) (num_classes = {k}): remap them "
            "to the model's classes (e.g. an 'ignore' id 255 to a real class)"
            + ("" if args.num_classes is not None else ", or pass --num-classes")
        )
    return Condition(label_map=ids, num_classes=k)


def _output_size(args: argparse.Namespace, model: Any, hw: tuple[int, int], masked: bool):
    """``--size``, else the size the generator makes from an ``hw`` input
    (``Generator.output_size``: super-resolution), else the input's own for a masked image."""
    if args.size:
        return (int(args.size[0]), int(args.size[1]))
    fixed = model.generator.output_size(hw)
    if fixed is not None:
        return tuple(int(v) for v in fixed)
    if masked:
        return hw
    raise CLIError(
        f"{args.image}: give the output size with --size H W; this model's generator does not "
        "fix it from the input image (it is not a super-resolution model)"
    )


def _image_condition(args: argparse.Namespace, model: Any) -> Any:
    from ..condition import Condition
    from ..data.transforms import load_alpha_mask, load_image

    path = args.image
    image = _read(load_image, path)[None]
    mask = _read(load_alpha_mask, path) if "mask" in model.data_fields else None
    if mask is not None:
        mask = mask[None]
    size = _output_size(args, model, tuple(image.shape[-2:]), mask is not None)
    if mask is not None and tuple(mask.shape[-2:]) != size:
        raise CLIError(f"{path}: a masked image must be given at the output size {size}")
    return Condition(image=image.clamp(-1, 1), mask=mask, size=size)


def _check_indices(indices: list[int], n: int) -> None:
    for i in indices:
        if not 0 <= i < n:
            raise CLIError(
                f"--index {i} is out of range: the data set has {n} item{'s' if n != 1 else ''}"
                + (f" (0..{n - 1})" if n else "")
            )


def _data_num_classes(args: argparse.Namespace, model: Any, dataset: Any) -> int | None:
    k = args.num_classes
    if k is None:
        k = model.generator.num_classes
    data_k = getattr(dataset, "num_classes", None)
    if k is None:
        return data_k
    if data_k is not None and data_k != k:
        raise CLIError(
            f"--data {args.data}: the data set has num_classes = {data_k} but the model takes "
            f"{k}; give the data set spec num_classes = {k} (if it has that option)"
        )
    return k


def _data_condition(args: argparse.Namespace, model: Any) -> tuple[Any, Any, list[int]]:
    from .. import data

    dataset = dataset_arg(args.data)
    indices = args.index or [0]
    _check_indices(indices, len(dataset))
    k = _data_num_classes(args, model, dataset)
    try:
        batch = data.collate([dataset[i] for i in indices], k)
    except ValueError as e:
        raise CLIError(f"--data {args.data}: {e}") from e
    return batch.cond, getattr(batch, "real", None), list(indices)


# --------------------------------------------------------------------------- the command


def _check_args(args: argparse.Namespace) -> None:
    if args.label_map is None and args.image is None and args.data is None:
        raise CLIError(
            "give the input to sample from: --label-map PNG (class ids), --image PNG (e.g. a "
            "low-resolution input) or --data SPEC --index I",
            2,
        )
    if args.index and args.data is None:
        raise CLIError("--index picks items of --data; give --data SPEC too", 2)
    if args.size and args.data is not None:
        raise CLIError("--size applies to --label-map and --image; data set items have theirs", 2)
    if args.n < 1:
        raise CLIError(f"-n {args.n}: ask for at least one sample per input", 2)
    if args.num_classes is not None and args.num_classes < 1:
        raise CLIError(f"--num-classes {args.num_classes}: give a positive number of classes", 2)
    if args.size and min(args.size) < 1:
        raise CLIError(f"--size {args.size[0]} {args.size[1]}: give a positive height and width", 2)


def _inputs(args: argparse.Namespace, model: Any) -> tuple[Any, Any, list[int]]:
    """``(cond, real or None, item indices)`` from --label-map, --image or --data."""
    try:
        if args.label_map is not None:
            return _label_map_condition(args, model), None, [0]
        if args.image is not None:
            return _image_condition(args, model), None, [0]
        return _data_condition(args, model)
    except ValueError as e:  # Condition's own checks
        raise CLIError(str(e)) from e


def _sampler_arg(text: str | None) -> Any:
    if text is None or not text.strip().startswith("{"):
        return text
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise CLIError(f"--sampler {text!r} is not valid JSON: {e}") from None


def _draw(args: argparse.Namespace, model: Any, cond: Any, device: Any) -> Any:
    """``args.n`` samples per input, ``[B, n, 3, H, W]`` on the CPU, seeded by ``--seed``."""
    import torch
    from einops import rearrange

    from ..errors import CapabilityError

    sampler = _sampler_arg(args.sampler)
    generator = torch.Generator(device=device).manual_seed(args.seed)
    try:
        with torch.random.fork_rng(devices=[]), torch.no_grad():
            torch.manual_seed(args.seed)
            drawn = model.sample(cond.to(device), args.n, sampler=sampler, generator=generator)
    except (ValueError, CapabilityError) as e:
        raise CLIError(str(e)) from e
    return rearrange(drawn.image.float().cpu(), "(b n) c h w -> b n c h w", n=args.n)


def _write(args: argparse.Namespace, cond: Any, samples: Any, real: Any, indices: list[int]):
    """The grid and one PNG per sample; the paths written."""
    from ..viz import sample_grid, save_image

    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = [out_dir / "grid.png"]
    sample_grid(cond, samples, real=real, path=written[0])
    for b, index in enumerate(indices):
        for k in range(args.n):
            written.append(save_image(samples[b, k], out_dir / f"sample_{index:02d}_{k:02d}.png"))
    return written


def cmd_sample(args: argparse.Namespace) -> int:
    _check_args(args)
    device = parse_device(args.device)
    model = load_model_dir(args.model_dir, device)
    cond, real, indices = _inputs(args, model)
    samples = _draw(args, model, cond, device)
    written = _write(args, cond, samples, real, indices)
    inputs = len(indices)
    out(
        f"wrote {args.n} sample{'s' if args.n != 1 else ''} for {inputs} "
        f"input{'s' if inputs != 1 else ''} (seed {args.seed}):"
    )
    for path in written:
        out(f"  {path}")
    return 0


def add_parser(sub: Any) -> None:
    s = sub.add_parser("sample", help="draw samples from a saved model into PNG files")
    s.add_argument(
        "model_dir", metavar="MODEL_DIR", help="a directory written by model.save_pretrained"
    )
    src = s.add_mutually_exclusive_group()
    src.add_argument("--label-map", metavar="PNG", help="an 8-bit (L or P mode) PNG of class ids")
    src.add_argument(
        "--image", metavar="PNG", help="a conditioning image, e.g. a low-resolution input"
    )
    src.add_argument(
        "--data",
        metavar="SPEC",
        help="a data set: spec file, inline JSON or a type name (items picked with --index)",
    )
    s.add_argument(
        "--index",
        type=int,
        action="append",
        metavar="I",
        help="a data set item to sample for (repeat for more; default 0)",
    )
    s.add_argument("-n", type=int, default=4, metavar="N", help="samples per input (default 4)")
    s.add_argument("--seed", type=int, default=0, metavar="S", help="random seed (default 0)")
    s.add_argument(
        "--out", default="samples", metavar="DIR", help="output folder (default ./samples)"
    )
    s.add_argument(
        "--num-classes",
        type=int,
        metavar="K",
        help="number of label classes (default: the generator's num_classes)",
    )
    s.add_argument(
        "--size",
        type=int,
        nargs=2,
        metavar=("H", "W"),
        help="output size (label maps are resized nearest to it)",
    )
    s.add_argument(
        "--sampler",
        metavar="NAME",
        help="a sampler part name or JSON spec (default: the model's sampler)",
    )
    s.add_argument("--device", default="cpu", metavar="D", help="device to run on (default cpu)")
    s.set_defaults(func=cmd_sample)
