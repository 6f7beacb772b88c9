"""`Condition`: what the data gives a generator, validated once at the boundary."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import torch
from torch import Tensor

from .nn import ops

__all__ = ["CONDITION_FIELDS", "Condition"]

#: Tensor fields of a Condition; capability checks speak in these names.
CONDITION_FIELDS: tuple[str, ...] = (
    "label_map",
    "instance_map",
    "class_id",
    "class_weights",
    "image",
    "mask",
)

_INT_DTYPES = (torch.int64, torch.int32, torch.int16, torch.uint8, torch.int8)


def _summary(values: Tensor, limit: int = 8) -> str:
    vals = torch.unique(values.detach().flatten().cpu())
    shown = ", ".join(str(v) for v in vals[:limit].tolist())
    return f"[{shown}{', ...' if vals.numel() > limit else ''}]"


def _channels_last(t: Tensor) -> bool:
    """``[B, H, W, C]`` with few channels last and many "channels" in dim 1 (an image as
    PIL/numpy/OpenCV lay it out): no real image has more than 4 channels at 2×2 pixels."""
    return t.dim() == 4 and t.shape[-1] in (1, 3, 4) and t.shape[1] > 4


def _layout_hint(name: str, t: Tensor) -> str:
    """The fix for the usual layouts of a wrong-shaped image or mask."""
    if _channels_last(t):
        return f"; this looks channels-last [B, H, W, C]: use {name}.permute(0, 3, 1, 2)"
    if t.dim() == 3 and t.shape[-1] in (1, 3, 4) and t.shape[0] > 4:
        return f"; this looks like one [H, W, C] image: use {name}.permute(2, 0, 1)[None]"
    if t.dim() == 3:
        return f"; for one image use {name}[None] (or {name}.unsqueeze(1) for [B, H, W])"
    return ""


#: The fields that hold ids: numpy integer arrays become ``long`` tensors.
_ID_FIELDS = frozenset({"label_map", "instance_map", "class_id"})


def _as_tensor(name: str, value: object) -> Tensor:
    """A numpy array given as Condition field ``name``, as a tensor (ids ``long``, float64
    ``float32``); any other type is a ``TypeError`` naming the field and the fix."""
    if type(value).__module__ == "numpy" and hasattr(value, "dtype"):
        t = torch.from_numpy(value.copy())  # a copy: negative strides, and no shared memory
        if name in _ID_FIELDS and not t.is_floating_point() and t.dtype != torch.bool:
            return t.long()
        return t.float() if t.dtype == torch.float64 else t
    raise TypeError(
        f"Condition.{name} is a {type(value).__name__}: give a torch tensor (numpy arrays are "
        f"converted), e.g. {name}=torch.as_tensor(...)"
    )


@dataclass
class Condition:
    """The conditioning input of one batch (DESIGN §3).

    Fields (all optional; give the ones your data has):
        label_map: ``LongTensor[B, H, W]`` class ids in ``[0, num_classes)``.
        num_classes: K, required with ``label_map``, ``class_id`` or ``class_weights``.
        instance_map: ``LongTensor[B, H, W]`` instance ids (boundaries via ``instance_edges``).
        class_id: ``LongTensor[B]`` image-level class.
        class_weights: ``FloatTensor[B, K, H, W]`` spatial class mixture; sums to 1 over K.
        image: ``FloatTensor[B, 3, h, w]`` in ``[-1, 1]`` (low-res input, partial image, reference).
        mask: ``FloatTensor[B, 1, H, W]`` in ``[0, 1]``, 1 = known pixel.
        size: ``(H, W)`` output size; inferred from the spatial maps when not given.

    Everything is checked in ``__post_init__`` with errors naming the field, the bad values and
    the fix, so that nothing fails later inside a kernel. Pass ``check=False`` only for data that
    was validated already (``.to()`` does that).

    NumPy arrays are converted (``torch.from_numpy``, on the CPU): integer id maps
    (``label_map``, ``instance_map``, ``class_id``) to ``long``, ``float64`` to ``float32``;
    the layout is kept, so an image must already be ``[B, 3, h, w]`` (not ``[B, H, W, 3]``).
    Other types (lists, PIL images) are a ``TypeError`` naming the field.
    """

    label_map: Tensor | None = None
    num_classes: int | None = None
    instance_map: Tensor | None = None
    class_id: Tensor | None = None
    class_weights: Tensor | None = None
    image: Tensor | None = None
    mask: Tensor | None = None
    size: tuple[int, int] | None = None
    check: bool = field(default=True, repr=False, compare=False)
    repeats: int = field(default=1, repr=False, compare=False)
    """Rows in a row that are copies of one input (``repeat_interleave`` sets it): a block that
    derives something from the condition alone (SPADE's γ, β) may compute it once per group."""

    def __post_init__(self) -> None:
        for name in CONDITION_FIELDS:
            value = getattr(self, name)
            if value is not None and not isinstance(value, Tensor):
                setattr(self, name, _as_tensor(name, value))
        if self.num_classes is not None and type(self.num_classes).__module__ == "numpy":
            self.num_classes = int(self.num_classes)  # e.g. np.int64 from array.max() + 1
        if self.size is None:
            for name in ("label_map", "instance_map", "class_weights", "mask"):
                t = getattr(self, name)
                if isinstance(t, Tensor) and t.dim() >= 2:
                    self.size = (int(t.shape[-2]), int(t.shape[-1]))
                    break
        elif not isinstance(self.size, tuple):
            self.size = tuple(self.size)  # type: ignore[assignment]
        if self.check:
            self.validate()

    # ------------------------------------------------------------------ validation
    def validate(self) -> Condition:
        """Check every field; raise ``ValueError`` naming field, bad value and fix."""
        present = self.fields()
        if not present:
            raise ValueError(
                "Condition has no tensor fields; give at least one of "
                f"{', '.join(CONDITION_FIELDS)}"
            )
        if not isinstance(self.repeats, int) or self.repeats < 1:
            raise ValueError(
                f"Condition.repeats = {self.repeats!r}: must be a positive int (rows per group "
                "of copies; leave it at 1 and use .repeat_interleave(n) to make copies)"
            )
        if self.batch_size % self.repeats:
            raise ValueError(
                f"Condition.repeats = {self.repeats} does not divide the batch of "
                f"{self.batch_size}: leave it at 1 and use .repeat_interleave(n) to make copies"
            )
        if self.size is not None:
            ok = len(self.size) == 2 and all(isinstance(s, int) and s > 0 for s in self.size)
            if not ok:
                raise ValueError(
                    f"Condition.size = {self.size!r}: must be two positive ints (H, W)"
                )
        if self.num_classes is not None and (
            not isinstance(self.num_classes, int) or self.num_classes < 1
        ):
            raise ValueError(
                f"Condition.num_classes = {self.num_classes!r}: must be a positive int"
            )
        batch = {name: int(getattr(self, name).shape[0]) for name in present}
        if len(set(batch.values())) > 1:
            raise ValueError(
                f"Condition fields disagree on the batch size: {batch}; give every field the "
                "same first dimension"
            )
        if self.label_map is not None:
            self._check_int_map("label_map")
            self._check_ids("label_map", self.label_map)
        if self.instance_map is not None:
            self._check_int_map("instance_map")
        if self.class_id is not None:
            t = self.class_id
            if t.dtype not in _INT_DTYPES or t.dim() != 1:
                raise ValueError(
                    f"Condition.class_id has dtype {t.dtype} and shape {tuple(t.shape)}: "
                    "expected an integer tensor of shape [B]; use torch.as_tensor(ids).long()"
                )
            self._check_ids("class_id", t)
        if self.class_weights is not None:
            self._check_class_weights()
        if self.image is not None:
            self._check_float("image", channels=None)
            lo, hi = float(self.image.min()), float(self.image.max())
            if lo < -1.0 - 1e-3 or hi > 1.0 + 1e-3:
                raise ValueError(
                    f"Condition.image has values in [{lo:.3g}, {hi:.3g}]: images are in "
                    "[-1, 1]; map [0, 1] images with x * 2 - 1 and [0, 255] with x / 127.5 - 1"
                )
        if self.mask is not None:
            self._check_float("mask", channels=1)
            lo, hi = float(self.mask.min()), float(self.mask.max())
            if lo < 0 or hi > 1:
                raise ValueError(
                    f"Condition.mask has values in [{lo:.3g}, {hi:.3g}]: a mask is in [0, 1] "
                    "with 1 = known pixel"
                )
        for name in ("label_map", "instance_map", "class_weights", "mask"):
            t = getattr(self, name)
            if t is not None and self.size is not None and tuple(t.shape[-2:]) != self.size:
                raise ValueError(
                    f"Condition.{name} is {tuple(t.shape[-2:])} but size is {self.size}: spatial "
                    "maps are given at the output size; resize them with synth.nn.ops.resize_labels "
                    "(ids) or F.interpolate (weights), or fix `size`"
                )
        return self

    def _check_int_map(self, name: str) -> None:
        t = getattr(self, name)
        if name == "label_map" and t.dim() == 4 and t.shape[1] > 1:
            # a one-hot (or soft) [B, K, H, W] map: checked before the dtype, whose message
            # (interpolated ids) would send the user the wrong way
            raise ValueError(
                f"Condition.label_map has shape {tuple(t.shape)} ({t.dtype}), which looks like "
                f"a one-hot [B, K, H, W] map: give class ids [B, H, W] with "
                f"label_map.argmax(1), or pass the map as class_weights=... (num_classes="
                f"{t.shape[1]})"
            )
        if t.dtype not in _INT_DTYPES:
            raise ValueError(
                f"Condition.{name} has dtype {t.dtype}: expected integer ids (torch.long); "
                f"a float map means ids were interpolated — load it with nearest resizing and "
                f"call .long()"
            )
        if t.dim() != 3:
            fix = f" use {name}.squeeze(1)" if t.dim() == 4 and t.shape[1] == 1 else ""
            raise ValueError(
                f"Condition.{name} has shape {tuple(t.shape)}: expected [B, H, W].{fix}"
            )
        if t.dtype != torch.int64:
            setattr(self, name, t.long())

    def _check_ids(self, name: str, t: Tensor) -> None:
        if self.num_classes is None:
            raise ValueError(
                f"Condition.{name} is given without num_classes: set num_classes=K "
                "(the number of label classes)"
            )
        bad = (t < 0) | (t >= self.num_classes)
        if bool(bad.any()):
            raise ValueError(
                f"Condition.{name} has ids {_summary(t[bad])} outside [0, {self.num_classes}) "
                f"(num_classes={self.num_classes}): remap them (e.g. an 'ignore' id 255 to a "
                "real class) or raise num_classes"
            )

    def _check_float(self, name: str, channels: int | None) -> None:
        t = getattr(self, name)
        if not t.is_floating_point():
            raise ValueError(
                f"Condition.{name} has dtype {t.dtype}: expected a float tensor; use {name}.float()"
            )
        if t.dim() != 4 or (channels is not None and t.shape[1] != channels):
            c = "C" if channels is None else str(channels)
            raise ValueError(
                f"Condition.{name} has shape {tuple(t.shape)}: expected [B, {c}, H, W]"
                + _layout_hint(name, t)
            )
        if channels is None and _channels_last(t):
            raise ValueError(
                f"Condition.{name} has shape {tuple(t.shape)}: expected [B, C, H, W]"
                + _layout_hint(name, t)
            )
        if not bool(torch.isfinite(t).all()):
            n = int((~torch.isfinite(t)).sum())
            raise ValueError(
                f"Condition.{name} has {n} NaN/Inf values: fix the data loader or mask them out"
            )

    def _check_class_weights(self) -> None:
        self._check_float("class_weights", channels=None)
        t = self.class_weights
        assert t is not None
        if self.num_classes is None:
            raise ValueError(
                "Condition.class_weights is given without num_classes: set num_classes=K"
            )
        if t.shape[1] != self.num_classes:
            raise ValueError(
                f"Condition.class_weights has {t.shape[1]} channels but num_classes = "
                f"{self.num_classes}: give one weight map per class ([B, K, H, W])"
            )
        if bool((t < 0).any()):
            raise ValueError(
                f"Condition.class_weights has negative values (min {float(t.min()):.3g}): "
                "weights are a per-pixel distribution over classes"
            )
        err = (t.sum(1) - 1).abs().max()
        if float(err) > 1e-3:
            raise ValueError(
                f"Condition.class_weights do not sum to 1 over classes (max deviation "
                f"{float(err):.3g}): normalise with w / w.sum(1, keepdim=True)"
            )

    # ------------------------------------------------------------------ helpers
    def __repr__(self) -> str:
        """Shapes and dtypes, never values: ``Condition(label_map=long[2, 64, 64], ...)``."""
        parts = []
        for name in CONDITION_FIELDS:
            t = getattr(self, name)
            if t is not None:
                dtype = str(t.dtype).removeprefix("torch.")
                where = "" if t.device.type == "cpu" else f" {t.device}"
                parts.append(f"{name}={dtype}[{', '.join(map(str, t.shape))}]{where}")
        if self.num_classes is not None:
            parts.append(f"num_classes={self.num_classes}")
        if self.size is not None:
            parts.append(f"size={tuple(self.size)}")
        return f"Condition({', '.join(parts)})"

    def fields(self) -> frozenset[str]:
        """Names of the tensor fields that are present."""
        return frozenset(n for n in CONDITION_FIELDS if getattr(self, n) is not None)

    @property
    def batch_size(self) -> int:
        return int(getattr(self, next(iter(sorted(self.fields())))).shape[0])

    @property
    def device(self) -> torch.device:
        return getattr(self, next(iter(sorted(self.fields())))).device

    def one_hot(self, size: tuple[int, int] | None = None) -> Tensor:
        """``[B, K, h, w]`` one-hot of the label map (nearest-resized to ``size``)."""
        if self.label_map is None or self.num_classes is None:
            raise ValueError("Condition.one_hot needs label_map and num_classes")
        labels = self.label_map if size is None else ops.resize_labels(self.label_map, size)
        return ops.one_hot(labels, self.num_classes)

    def map(self, fn, *, repeats: int = 1) -> Condition:
        """Apply ``fn`` to every tensor field (e.g. ``lambda t: t[:2]``); no re-validation.
        The result's rows are taken as distinct unless ``repeats`` says otherwise."""
        changes = {n: fn(getattr(self, n)) for n in self.fields()}
        return dataclasses.replace(self, check=False, repeats=repeats, **changes)

    def to(self, device: torch.device | str | None = None, **kwargs) -> Condition:
        """Move every tensor field (float fields may change dtype with ``dtype=``)."""
        dtype = kwargs.pop("dtype", None)

        def move(t: Tensor) -> Tensor:
            t = t.to(device, **kwargs)
            return t.to(dtype) if dtype is not None and t.is_floating_point() else t

        return self.map(move, repeats=self.repeats)

    def repeat_interleave(self, n: int) -> Condition:
        """Each input ``n`` times in a row: batch ``[B] -> [B·n]`` ordered ``(b n)``;
        ``repeats`` records the groups."""
        return self.map(lambda t: t.repeat_interleave(n, dim=0), repeats=self.repeats * n)

    def __getitem__(self, index) -> Condition:
        """Index the batch dimension (int, slice or index tensor). A step-1 slice on group
        boundaries keeps ``repeats``."""
        if isinstance(index, int):
            index = slice(index, index + 1)
        return self.map(lambda t: t[index], repeats=self._repeats_after(index))

    def _repeats_after(self, index: object) -> int:
        r = self.repeats
        if r == 1 or not isinstance(index, slice) or index.step not in (None, 1):
            return 1
        start, stop, _ = index.indices(self.batch_size)
        return r if start % r == 0 and (stop - start) % r == 0 and stop > start else 1

    def distinct(self) -> Condition:
        """One row per group of copies (``[B·r] -> [B]``): ``self`` when ``repeats`` is 1."""
        r = self.repeats
        return self if r == 1 else self.map(lambda t: t[::r])
