"""The dataset base: item format, per-item random generators, epochs.

Item format (binding; the Trainer, ``collate`` and the CLI rely on it). ``dataset[i]`` is a dict:

- ``"real"``: ``FloatTensor[3, H, W]`` in ``[-1, 1]``, the target photo;
- the :class:`synth.Condition` fields the dataset has (listed in ``dataset.fields``), unbatched:
  ``"label_map"`` ``LongTensor[H, W]``, ``"instance_map"`` ``LongTensor[H, W]``, ``"image"``
  ``FloatTensor[3, h, w]`` in ``[-1, 1]`` (the conditioning image: a low-resolution input, a
  masked image), ``"mask"`` ``FloatTensor[1, H, W]`` (1 = known pixel), ``"class_id"``
  ``LongTensor[]``;
- ``"index"``: the ``int`` index of the item.

Determinism (binding; exact training resume relies on it). Random augmentation (crop offsets,
flips, random masks) draws only from a per-item :class:`torch.Generator` seeded with
:func:`item_seed` ``(seed, epoch, index)``, never from the global RNG. Item ``i`` of epoch ``e``
is therefore the same in any worker, process or resumed run, and reading items leaves
``torch.get_rng_state()`` untouched.

Epochs: call ``dataset.set_epoch(e)`` before iterating epoch ``e`` (as with
``DistributedSampler.set_epoch``). DataLoader workers hold a copy of the dataset made when the
iterator starts, so with ``persistent_workers=True`` a later ``set_epoch`` does not reach them:
keep ``persistent_workers=False`` (the default) or make a new loader per epoch.
"""

from __future__ import annotations

import operator
from abc import ABC, abstractmethod
from typing import Any

import torch
from torch.utils.data import Dataset

__all__ = ["SynthDataset", "item_generator", "item_seed"]

_MASK64 = (1 << 64) - 1


def _splitmix64(x: int) -> int:
    """One step of SplitMix64 (Steele et al. 2014): a bijective 64-bit mixer."""
    x = (x + 0x9E3779B97F4A7C15) & _MASK64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK64
    return x ^ (x >> 31)


def item_seed(seed: int, epoch: int, index: int) -> int:
    """The seed of item ``index`` in epoch ``epoch`` of a dataset seeded with ``seed``.

    ``h = splitmix64(splitmix64(splitmix64(seed) ^ epoch) ^ index) >> 1``, all arithmetic
    modulo 2**64 (negative inputs are taken modulo 2**64 too). Chaining a bijective mixer keeps
    neighbouring seeds, epochs and indices statistically independent, and unlike a linear
    formula such as ``seed * 1_000_003 + epoch * 10_007 + index`` two different triples never
    collide by arithmetic accident (``(e, i)`` vs ``(e + 1, i - 10_007)``). The result fits in
    63 bits, a valid ``torch.Generator.manual_seed`` argument.
    """
    h = _splitmix64(int(seed) & _MASK64)
    h = _splitmix64(h ^ (int(epoch) & _MASK64))
    h = _splitmix64(h ^ (int(index) & _MASK64))
    return h >> 1


def item_generator(seed: int, epoch: int, index: int) -> torch.Generator:
    """A CPU :class:`torch.Generator` seeded with :func:`item_seed` ``(seed, epoch, index)``."""
    g = torch.Generator()
    g.manual_seed(item_seed(seed, epoch, index))
    return g


class SynthDataset(Dataset, ABC):
    """Base of the synth data sets: item format, ``set_epoch`` and the per-item generator.

    Subclasses set ``num_classes``, ``fields`` and ``seed``, implement ``__len__`` and
    ``_load(index, generator) -> dict`` (the item without ``"index"``), and draw every random
    number of item ``index`` from ``generator``.

    Attributes:
        num_classes: K for label maps / class ids, or ``None`` when the data has neither.
        fields: the :class:`synth.Condition` fields the items hold (e.g. ``{"label_map"}``).
        seed: the augmentation seed (see :func:`item_seed`).
        epoch: the current epoch, set with :meth:`set_epoch` (starts at 0).
    """

    num_classes: int | None = None
    fields: frozenset[str] = frozenset()

    def __init__(self, seed: int = 0) -> None:
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise ValueError(f"seed = {seed!r}: must be an int")
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose random augmentation the next items get."""
        if isinstance(epoch, bool) or not isinstance(epoch, int) or epoch < 0:
            raise ValueError(f"set_epoch({epoch!r}): the epoch must be an int >= 0")
        self.epoch = epoch

    def generator(self, index: int) -> torch.Generator:
        """The generator of item ``index`` in the current epoch."""
        return item_generator(self.seed, self.epoch, index)

    @abstractmethod
    def __len__(self) -> int: ...

    @abstractmethod
    def _load(self, index: int, generator: torch.Generator) -> dict[str, Any]:
        """Item ``index`` with all randomness drawn from ``generator``."""

    def __getitem__(self, index: int) -> dict[str, Any]:
        try:
            if isinstance(index, bool):
                raise TypeError
            index = operator.index(index)  # int, numpy integer, 0-d integer tensor
        except TypeError:
            raise TypeError(
                f"{type(self).__name__} indices are ints, got {type(index).__name__}"
            ) from None
        n = len(self)
        if index < 0:
            index += n
        if not 0 <= index < n:
            raise IndexError(f"{type(self).__name__} index {index} out of range (len {n})")
        item = self._load(index, self.generator(index))
        item["index"] = index
        return item

    def __repr__(self) -> str:
        fields = ", ".join(sorted(self.fields))
        return (
            f"{type(self).__name__}(len={len(self)}, num_classes={self.num_classes}, "
            f"fields={{{fields}}}, seed={self.seed})"
        )
