"""Core metrics (DESIGN §3 kind ``metric``, §6): LPIPS diversity, identity recovery, FID.

Every metric accumulates with ``update(...)``, returns ``compute() -> dict`` with its values and
a ``"settings"`` entry (backbone, weights file and its SHA-256, resolution, ``n``) so a number can
be traced to how it was measured, and forgets its state with ``reset()`` (the networks are kept).

- :class:`LPIPSDiversity` (``core.lpips_diversity``): mean pairwise LPIPS over the samples of
  each input, averaged over inputs — the "Diversity" / "LPIPS" column of multimodal synthesis
  papers (BicycleGAN, MSGAN, NDiv, nested-scale, cIMLE).
- :class:`IdentityRecovery` (``core.identity_recovery``): the nested-scale paper's "Shortest
  Distance" (closest of ``n`` samples to the ground truth, averaged) and "Recovery Count"
  (for how many inputs each compared model has the closest sample).
- :class:`FID` (``core.fid``): Fréchet Inception Distance through torchmetrics'
  ``FrechetInceptionDistance`` on torch-fidelity's Inception v3, with a user-supplied weights
  file (never downloaded, never random), read without unpickling.

Metrics are not ``nn.Module``s; their networks follow the device of the tensors given to
``update`` (or call ``metric.to(device)``). All updates run under ``torch.no_grad()``.
"""

from .diversity import LPIPSDiversity
from .fid import FID, FID_WEIGHTS_FILE, FID_WEIGHTS_URL, frechet_distance
from .identity import IdentityRecovery
from .provenance import file_sha256, lpips_weights_info

__all__ = [
    "FID",
    "FID_WEIGHTS_FILE",
    "FID_WEIGHTS_URL",
    "IdentityRecovery",
    "LPIPSDiversity",
    "file_sha256",
    "frechet_distance",
    "lpips_weights_info",
]
