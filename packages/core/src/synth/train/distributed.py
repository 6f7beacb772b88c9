"""Data parallel training: the process group torchrun describes, and the networks the objective
updates wrapped in :class:`~torch.nn.parallel.DistributedDataParallel`.

Launched by ``torchrun`` (single- or multi-node: ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK`` and
the rendezvous variables), the Trainer joins the process group (NCCL on CUDA, gloo on CPU) and
each rank trains on its slice of every epoch's permutation. DDP averages the gradients during
backward (bucketed all-reduces overlapping the backward pass) and broadcasts buffers from rank
0 at each wrapped forward (``broadcast_buffers``).

The wrappers are the Trainer's, never the model's: ``model.generator`` stays the bare network,
so checkpoints, ``save_pretrained`` and the exported model never see a ``module.`` prefix, and
a single process has no wrapper at all. An objective asks for the wrapped view of a network
with ``updater.synced(network)`` (:func:`synth.parts.objectives.synced`) for the forward passes
whose loss it hands to ``updater.update``; every other call (no-grad passes, a frozen
discriminator's pass in the generator step) uses the bare network and costs no communication.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import inspect
import os
from collections.abc import Iterator
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel

from ..errors import ConfigError

__all__ = ["Process", "Replica", "Replicas", "resolve_device"]


class Process:
    """Rank and world size of this process (1 outside torchrun); owns the process group it
    created."""

    def __init__(self, device_type: str) -> None:
        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        self.local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        self.owns_group = False
        if self.world > 1 and not dist.is_initialized():
            dist.init_process_group(backend="nccl" if device_type == "cuda" else "gloo")
            self.owns_group = True

    @property
    def main(self) -> bool:
        return self.rank == 0

    def all_reduce_min(self, t: Tensor) -> None:
        if self.world > 1:
            dist.all_reduce(t, op=dist.ReduceOp.MIN)

    def broadcast(self, tensors: list[Tensor]) -> None:
        """Rank 0's values of ``tensors`` on every rank."""
        if self.world > 1:
            for t in tensors:
                dist.broadcast(t, 0)

    def barrier(self) -> None:
        if self.world > 1:
            dist.barrier()

    def gather_objects(self, obj: Any) -> list[Any]:
        """``obj`` of every rank, in rank order."""
        if self.world == 1:
            return [obj]
        out: list[Any] = [None] * self.world
        dist.all_gather_object(out, obj)
        return out

    def close(self) -> None:
        if self.owns_group and dist.is_initialized():
            dist.destroy_process_group()


def resolve_device(name: str, local_rank: int) -> torch.device:
    """``"auto"`` -> CUDA when available, else CPU; a bare ``"cuda"`` -> this rank's GPU."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(name)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(f"device = {name!r} but CUDA is not available; use 'cpu' or 'auto'")
        if device.index is None:
            device = torch.device("cuda", local_rank)
    return device


def _tensors(obj: Any) -> list[Tensor]:
    """The tensors in ``obj`` (tensors, lists, tuples, dicts and dataclasses such as
    ``SynthesisOutput``, ``DiscriminatorOutput`` and ``Latents``), in a fixed order."""
    if isinstance(obj, Tensor):
        return [obj]
    if isinstance(obj, (list, tuple)):
        return [t for v in obj for t in _tensors(v)]
    if isinstance(obj, dict):
        return [t for v in obj.values() for t in _tensors(v)]
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return [t for f in dataclasses.fields(obj) for t in _tensors(getattr(obj, f.name))]
    return []


def _rebuilt(obj: Any, tensors: Iterator[Tensor]) -> Any:
    """``obj`` with its tensors (in :func:`_tensors` order) replaced by ``tensors``."""
    if isinstance(obj, Tensor):
        return next(tensors)
    if isinstance(obj, list):
        return [_rebuilt(v, tensors) for v in obj]
    if isinstance(obj, tuple):
        items = [_rebuilt(v, tensors) for v in obj]
        return type(obj)(*items) if hasattr(obj, "_fields") else tuple(items)
    if isinstance(obj, dict):
        return type(obj)((k, _rebuilt(v, tensors)) for k, v in obj.items())
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        new = copy.copy(obj)  # no __init__: the values were validated when obj was made
        for f in dataclasses.fields(obj):
            object.__setattr__(new, f.name, _rebuilt(getattr(obj, f.name), tensors))
        return new
    return obj


class _Methods(nn.Module):
    """Runs any method of ``net`` as its ``forward``, so that DDP, which wraps ``forward``
    only, also sees calls such as ``injector.posterior`` (``"__call__"`` keeps ``net``'s
    forward hooks).

    The result goes back as ``(tensors, rebuild)``: DDP passes every output tensor through
    its ``_DDPSink`` (which it finds by pytree flattening, and a dataclass such as
    ``SynthesisOutput`` is an opaque leaf to pytree), so outputs that the loss leaves unused
    (a pyramid only the selection reads, say) still release their parameters' gradients.
    """

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, method: str, *args: Any, **kwargs: Any) -> Any:
        fn = self.net if method == "__call__" else getattr(self.net, method)
        out = fn(*args, **kwargs)
        return tuple(_tensors(out)), lambda tensors: _rebuilt(out, iter(tensors))


class Replica:
    """A network as the loss forwards of an objective call it under DDP: calling it, or any of
    its methods, runs through the ``DistributedDataParallel`` wrapper (so the gradients of the
    following backward are all-reduced); other attributes are the network's own."""

    def __init__(self, net: nn.Module, ddp: DistributedDataParallel) -> None:
        self.module, self._ddp = net, ddp
        self.calls = 0
        self.since_update = 0  # forwards since the last update of this network

    def _run(self, method: str, *args: Any, **kwargs: Any) -> Any:
        self.calls += 1
        self.since_update += 1
        tensors, rebuild = self._ddp(method, *args, **kwargs)
        return rebuild(tensors)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._run("__call__", *args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self.module, name)
        if inspect.ismethod(attr) and attr.__self__ is self.module:
            return functools.partial(self._run, name)
        return attr


class Replicas:
    """The DDP wrappers of the trained networks (none in a single process).

    A network is wrapped with the parameters that train *now*: DDP registers only parameters
    with ``requires_grad`` when it is built, so when a freeze rule flips (or a network has
    nothing to train) :meth:`sync` rebuilds (or drops) its wrapper; the constructor broadcasts
    rank 0's weights and buffers, so the ranks also start in agreement. Buffers then follow
    DDP's default ``broadcast_buffers``: rank 0's are broadcast at each wrapped forward.

    Unused parameters: a wrapped forward may leave trainable parameters without a gradient
    (an injector's prior-only weights under ``posterior``, an RGB head whose output no loss
    reads), and DDP must know, or it waits for them forever. A fresh wrapper therefore has
    ``find_unused_parameters=True`` (one autograd-graph traversal per forward, and every
    output passed through DDP's sink). After its first update, when every trainable
    parameter got a gradient (DDP leaves a parameter unused on every rank at ``None``, so all
    ranks decide alike), it is rebuilt without: the common case costs nothing per step. This
    assumes a network uses the same parameters in every step on every rank, which holds for
    parts written as batched tensor ops (no branching on the data); one that did not would
    make DDP stop with "Expected to have finished reduction in the prior iteration".
    ``static_graph=True`` is not an option: it counts a parameter reached only through an
    output the loss ignores as *used* in its first iteration, then fails in the second.
    """

    def __init__(self, process: Process, device: torch.device) -> None:
        self.process, self.device = process, device
        self._wrapped: dict[int, Replica] = {}
        self._signature: dict[int, tuple[bool, ...]] = {}
        self._probing: set[int] = set()  # wrapped with find_unused_parameters, undecided
        self._names: dict[str, int] = {}

    def sync(self, networks: dict[str, nn.Module]) -> None:
        """Before a step: (re)wrap each network whose set of trainable parameters changed,
        and settle the unused-parameter setting of wrappers that have done an update."""
        if self.process.world == 1:
            return
        self._names = {name: id(net) for name, net in networks.items()}
        for net in networks.values():
            key, signature = id(net), tuple(p.requires_grad for p in net.parameters())
            if self._signature.get(key) != signature:
                self._signature[key] = signature
                self._wrapped.pop(key, None)
                self._probing.discard(key)
                if any(signature):
                    self._wrapped[key] = Replica(net, self._wrap(net, find_unused=True))
                    self._probing.add(key)
            elif key in self._probing and self._wrapped[key].calls > 0:
                self._probing.discard(key)
                if all(p.grad is not None for p in net.parameters() if p.requires_grad):
                    self._wrapped[key] = Replica(net, self._wrap(net, find_unused=False))

    def _wrap(self, net: nn.Module, *, find_unused: bool) -> DistributedDataParallel:
        cuda = self.device.type == "cuda"
        return DistributedDataParallel(
            _Methods(net),
            device_ids=[self.device.index] if cuda else None,
            find_unused_parameters=find_unused,
        )

    def check_synced(self, name: str) -> None:
        """Before ``name`` is updated: its loss must have come through its DDP view, or its
        gradients would not be averaged and the ranks would drift apart silently."""
        replica = self._wrapped.get(self._names.get(name, -1))
        if replica is None:
            return
        if replica.since_update == 0:
            raise RuntimeError(
                f"the objective updates {name!r} under torchrun, but no forward of this loss "
                f"ran through its DDP view, so its gradients would not be averaged across "
                f"ranks: call the network as synced(updater, model.{name})(...) "
                "(synth.parts.objectives.synced) in the forwards whose loss it updates"
            )
        replica.since_update = 0

    def get(self, net: Any) -> Any:
        """The :class:`Replica` of ``net`` when it is wrapped, else ``net`` itself."""
        return self._wrapped.get(id(net), net)

    def release(self) -> None:
        """Drop every wrapper (the networks are untouched)."""
        self._wrapped.clear()
        self._signature.clear()
        self._probing.clear()
        self._names.clear()
