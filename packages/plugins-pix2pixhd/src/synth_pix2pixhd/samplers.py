"""``pix2pixhd.cluster_sampler``: k-means over encoded instance features (paper §3.4).

After training, the encoder E is run over the training images; each instance contributes one
feature vector (official ``encode_features``: the pooled feature at the instance's middle pixel
in raster order, instances smaller than half of ``H·W/32`` pixels skipped), and the vectors of
each class are clustered by k-means (k = 10). At test time one random centre of its class is
drawn per instance; an editing call sets a chosen centre for a chosen instance (a different
colour for one car, another texture for one road).

Everything is vectorised: per-instance features come from one sort + ``index_add`` over
``(batch, instance)`` segments, and k-means runs for all classes at once on padded
``[K, N_max, C]`` tensors with masks.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import torch
from einops import rearrange
from pydantic import Field
from torch import Tensor, nn

from synth import Condition, Latents, PartConfig, Sampler, SynthesisOutput

from .encoders import instance_segments

if TYPE_CHECKING:
    from synth import SynthesisModel

__all__ = ["ClusterSampler", "batched_kmeans", "instance_features"]


def instance_features(
    features: Tensor, instance_map: Tensor, label_map: Tensor, *, block_num: int = 32
) -> tuple[Tensor, Tensor, Tensor]:
    """One feature vector per ``(sample, instance)``, as the official ``encode_features``.

    Args:
        features: ``[B, C, H, W]`` pooled encoder output (constant within each instance).
        instance_map, label_map: ``LongTensor[B, H, W]``.
        block_num: the official area unit: an instance is kept when its pixel count
            ``num / (H·W // block_num) > 0.5``.
    Returns:
        ``(feats [S, C], labels [S], keep [S] bool)`` over the ``S`` segments: the feature
        and class at each instance's middle pixel (index ``num // 2`` in raster order), and
        the area filter.
    """
    h, w = features.shape[-2:]
    seg, order, starts = instance_segments(instance_map)
    n = seg.numel()
    counts = torch.zeros(n, dtype=torch.long, device=seg.device).index_add_(
        0, seg, torch.ones_like(seg)
    )
    first = torch.nonzero(starts).squeeze(1)  # [S] sorted position of each segment's start
    num = counts[: first.numel()]
    mid = order[first + num // 2]  # flat pixel index of the middle pixel
    flat = rearrange(features, "b c h w -> (b h w) c")
    feats = flat.index_select(0, mid)
    labels = rearrange(label_map, "b h w -> (b h w)").index_select(0, mid)
    keep = num.float() / float(h * w // block_num) > 0.5
    return feats, labels, keep


def batched_kmeans(
    points: Tensor,
    mask: Tensor,
    k: int,
    *,
    iters: int = 100,
    generator: torch.Generator | None = None,
) -> tuple[Tensor, Tensor]:
    """k-means (k-means++ seeding, Lloyd iterations) for ``G`` groups at once.

    Args:
        points: ``[G, N, C]`` (padded). mask: ``[G, N]`` bool, True for real points.
        k: clusters per group; a group with ``n < k`` points gets ``n`` centres.
        generator: seeds the k-means++ draws.
    Returns:
        ``(centers [G, k, C], valid [G, k] bool)``.
    """
    g, n, c = points.shape
    pts = points.float()
    counts = mask.sum(1)
    kk = torch.clamp(counts, max=k)  # centres per group
    centers = pts.new_zeros(g, k, c)
    valid = torch.arange(k, device=pts.device)[None] < kk[:, None]
    # k-means++: the first centre uniformly, then proportional to the squared distance.
    d2 = torch.full((g, n), float("inf"), device=pts.device)
    probs = mask.float()
    for j in range(k):
        w = torch.where(mask, probs, torch.zeros_like(probs))
        w = torch.where(w.sum(1, keepdim=True) > 0, w, mask.float())
        w = torch.where(w.sum(1, keepdim=True) > 0, w, torch.ones_like(w))
        pick = torch.multinomial(w, 1, generator=generator).squeeze(1)  # [G]
        centers[:, j] = pts[torch.arange(g), pick]
        d2 = torch.minimum(d2, (pts - centers[:, j : j + 1]).square().sum(-1))
        probs = d2.clamp_min(0)
    for _ in range(iters):
        dist = torch.cdist(pts, centers)  # [G, N, k]
        dist = dist.masked_fill(~valid[:, None, :], float("inf"))
        assign = dist.argmin(-1)  # [G, N]
        onehot = torch.nn.functional.one_hot(assign, k).float() * mask[..., None].float()
        sums = torch.einsum("gnk,gnc->gkc", onehot, pts)
        cnt = onehot.sum(1)  # [G, k]
        new = torch.where(cnt[..., None] > 0, sums / cnt.clamp_min(1)[..., None], centers)
        if torch.allclose(new, centers):
            centers = new
            break
        centers = new
    return centers, valid


class ClusterSampler(Sampler, nn.Module):
    """Samples instance features from per-class k-means centres (pix2pixHD §3.4).

    1. :meth:`fit` runs the model's ``pix2pixhd.instance_encoder`` posterior over a data set,
       keeps one feature per instance (official area filter) and clusters each class's
       features (``k`` centres, fewer for classes with fewer instances).
    2. ``sample(model, cond, n, generator=g)``: for each of the ``n`` copies of each input, every
       instance gets a random centre of its class (classes without centres get zeros) ->
       ``latents.spatial [B·n, C, H, W]`` -> the generator. Returns ``image [B·n, 3, H, W]``
       ordered ``(b n)`` and those latents.
    3. :meth:`set_instance_cluster` edits the features of one instance to a chosen centre.

    The fitted state is the buffers ``centers [K, k, C]`` and ``valid [K, k]``: the sampler is
    an ``nn.Module``, so as a model's sampler they are in ``model.state_dict()`` (keys
    ``sampler.centers``, ``sampler.valid``), move with ``model.to(device)`` and are saved by
    ``save_pretrained`` and restored by ``synth.load`` like any part's. ``K`` and ``C`` are
    known only from the data, so an unfitted sampler holds empty ``[0, k, 0]`` / ``[0, k]``
    buffers and loading takes the saved shapes (as torch's lazy modules do).
    """

    class Config(PartConfig):
        n_clusters: int = Field(10, ge=1, description="k-means clusters per class (n_clusters)")
        block_num: int = Field(32, ge=1, description="area filter unit: H·W // block_num")
        iters: int = Field(100, ge=1, description="Lloyd iterations at most")
        seed: int = Field(0, description="seeds k-means++")

    config: Config

    centers: Tensor
    valid: Tensor

    def __init__(self, config: Config | dict | None = None, **kwargs: Any) -> None:
        super().__init__(config, **kwargs)
        k = self.config.n_clusters
        self.register_buffer("centers", torch.zeros(0, k, 0))
        self.register_buffer("valid", torch.zeros(0, k, dtype=torch.bool))

    # ------------------------------------------------------------------ state
    @property
    def fitted(self) -> bool:
        """Whether the centres were fitted (or loaded)."""
        return self.centers.numel() > 0

    def set_centers(self, centers: Tensor, valid: Tensor) -> None:
        """Take ``centers [K, k, C]`` and ``valid [K, k]`` as the fitted state (on the
        buffers' device, ``centers`` in fp32)."""
        self.centers = centers.to(self.centers.device, torch.float32)
        self.valid = valid.to(self.valid.device, torch.bool)

    def _load_from_state_dict(
        self,
        state_dict: dict[str, Any],
        prefix: str,
        local_metadata: dict[str, Any],
        strict: bool,
        missing_keys: list[str],
        unexpected_keys: list[str],
        error_msgs: list[str],
    ) -> None:
        # the fitted shapes depend on the data: take the saved ones, then load as usual
        for name in ("centers", "valid"):
            saved = state_dict.get(prefix + name)
            if isinstance(saved, Tensor):
                own = getattr(self, name)
                setattr(self, name, own.new_empty(saved.shape))
        super()._load_from_state_dict(
            state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs
        )

    # ------------------------------------------------------------------ fitting
    def fit_features(self, feats: Tensor, labels: Tensor, num_classes: int) -> ClusterSampler:
        """Cluster ``feats [N, C]`` by class ``labels [N]`` (all kept) into the centres."""
        c = feats.shape[1]
        order = torch.argsort(labels, stable=True)
        labels, feats = labels[order], feats[order].float()
        per = torch.bincount(labels, minlength=num_classes)
        n_max = max(int(per.max()) if per.numel() else 0, 1)
        start = torch.cumsum(per, 0) - per
        pos = torch.arange(labels.numel()) - start[labels]
        points = feats.new_zeros(num_classes, n_max, c)
        mask = torch.zeros(num_classes, n_max, dtype=torch.bool)
        points[labels, pos] = feats
        mask[labels, pos] = True
        gen = torch.Generator().manual_seed(self.config.seed)
        self.set_centers(
            *batched_kmeans(
                points, mask, self.config.n_clusters, iters=self.config.iters, generator=gen
            )
        )
        return self

    @torch.no_grad()
    def fit(
        self, model: SynthesisModel, dataset: Iterable[Any], *, batch_size: int = 1
    ) -> ClusterSampler:
        """Encode every item of ``dataset`` (dicts with ``real``, ``label_map``,
        ``instance_map``, or :class:`synth.data.Batch` es) and cluster the instance features."""
        from synth.data import collate

        encoder = model.injector
        if encoder is None or not type(encoder).has_posterior:
            raise ValueError(
                "pix2pixhd.cluster_sampler.fit needs the model's instance encoder "
                "(injector pix2pixhd.instance_encoder)"
            )
        num_classes = int(model.generator.config.num_classes)
        device = next(encoder.parameters()).device
        feats, labels = [], []
        items = list(dataset) if not hasattr(dataset, "__len__") else dataset
        for start in range(0, len(items), batch_size):
            chunk = [items[i] for i in range(start, min(start + batch_size, len(items)))]
            batch = collate(chunk, num_classes) if isinstance(chunk[0], dict) else chunk[0]
            cond, real = batch.cond.to(device), batch.real.to(device)
            pooled = encoder.posterior(real, cond).spatial
            f, lab, keep = instance_features(
                pooled, cond.instance_map, cond.label_map, block_num=self.config.block_num
            )
            feats.append(f[keep].cpu())
            labels.append(lab[keep].cpu())
        return self.fit_features(torch.cat(feats), torch.cat(labels), num_classes)

    # ------------------------------------------------------------------ sampling
    def _fitted(self) -> tuple[Tensor, Tensor]:
        if not self.fitted:
            raise ValueError(
                "pix2pixhd.cluster_sampler has no cluster centres: call "
                "sampler.fit(model, dataset) (or set_centers / load a fitted model) first"
            )
        return self.centers, self.valid

    def draw(self, cond: Condition, generator: torch.Generator | None = None) -> Tensor:
        """``[B, C, H, W]``: one random valid centre of its class per ``(sample, instance)``."""
        centers, valid = self._fitted()
        centers, valid = centers.to(cond.device), valid.to(cond.device)
        inst, lab = cond.instance_map, cond.label_map
        if inst is None or lab is None:
            raise ValueError("pix2pixhd.cluster_sampler needs label_map and instance_map")
        b, h, w = inst.shape
        seg, order, starts = instance_segments(inst)
        first = torch.nonzero(starts).squeeze(1)
        seg_label = rearrange(lab, "b h w -> (b h w)")[order[first]]  # [S] class of each instance
        nvalid = valid.sum(1)[seg_label]  # [S]
        u = torch.rand(first.numel(), generator=generator, device=cond.device)
        pick = (u * nvalid.clamp_min(1)).long().clamp_max(centers.shape[1] - 1)
        vec = centers[seg_label, pick] * (nvalid > 0).float()[:, None]  # [S, C]
        out = vec.index_select(0, seg)
        return rearrange(out, "(b h w) c -> b c h w", b=b, h=h, w=w)

    def sample(
        self,
        model: SynthesisModel,
        cond: Condition,
        n: int,
        *,
        generator: torch.Generator | None = None,
    ) -> SynthesisOutput:
        """``n`` samples per input, ``image [B·n, 3, H, W]`` ordered ``(b n)``."""
        cond_n = cond.repeat_interleave(n)
        latents = Latents(spatial=self.draw(cond_n, generator))
        image = model.generator(cond_n, latents).image
        return SynthesisOutput(image=image, latents=latents)

    def set_instance_cluster(
        self,
        cond: Condition,
        latents: Latents,
        instance_id: int,
        cluster: int,
        *,
        batch_index: int | None = None,
    ) -> Latents:
        """Latents with instance ``instance_id``'s features set to centre ``cluster`` of its
        class (in sample ``batch_index``, or every sample); the other instances keep theirs.

        ``latents.spatial: [B, C, H, W]``; returns new Latents (the input is not modified).
        """
        centers, valid = self._fitted()
        if cond.instance_map is None or cond.label_map is None or latents.spatial is None:
            raise ValueError("set_instance_cluster needs label_map, instance_map and spatial")
        sel = cond.instance_map == instance_id  # [B, H, W]
        if batch_index is not None:
            keep = torch.zeros_like(sel)
            keep[batch_index] = True
            sel = sel & keep
        if not bool(sel.any()):
            raise ValueError(f"instance {instance_id} does not occur in the instance map")
        cls = int(cond.label_map[sel][0])
        if not bool(valid[cls, cluster]):
            raise ValueError(
                f"class {cls} has {int(valid[cls].sum())} centres; cluster {cluster} is not one"
            )
        vec = centers[cls, cluster].to(latents.spatial)
        spatial = torch.where(sel[:, None], vec[None, :, None, None], latents.spatial)
        return Latents(spatial=spatial)

    def example_inputs(
        self, *, batch_size: int, size: tuple[int, int], generator: torch.Generator
    ) -> dict[str, Any]:
        """Conformance inputs: a tiny pix2pixHD model with instance features and random
        centres (4 classes, 3 clusters, 3 feature channels)."""
        import synth
        from synth.testing import make_condition

        torch.manual_seed(0)
        model = synth.compose(
            {
                "generator": {
                    "type": "pix2pixhd.global_generator",
                    "num_classes": 4,
                    "ngf": 4,
                    "n_downsampling": 1,
                    "n_blocks": 1,
                    "use_instances": True,
                    "feat_num": 3,
                },
                "injector": {"type": "pix2pixhd.instance_encoder", "nef": 4, "n_downsampling": 1},
            }
        ).eval()
        centers = torch.rand(4, 3, 3, generator=generator) * 2 - 1
        self.set_centers(centers, torch.ones(4, 3, dtype=torch.bool))
        cond = make_condition(
            {"label_map", "instance_map"},
            batch_size=batch_size,
            size=size,
            num_classes=4,
            generator=generator,
        )
        return {"model": model, "cond": cond, "n": 2}
