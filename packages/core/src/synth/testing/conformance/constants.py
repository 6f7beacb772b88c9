"""Names and tolerances of the conformance checks."""

from __future__ import annotations

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
