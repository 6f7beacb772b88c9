"""Training (layer 6): the Trainer, its run configuration and ``synth train``.

Modules: :mod:`.config` (TrainerConfig, RunConfig), :mod:`.checkpoint` (files, RNG states),
:mod:`.distributed` (torchrun, DDP), :mod:`.optimization` (optimizers, LR schedules,
GradScalers, freeze rules), :mod:`.ema`, :mod:`.updater`, :mod:`.logs`, :mod:`.trainer`
(the loop) and :mod:`.run` (``train(RunConfig)``).
"""

from .checkpoint import CheckpointError
from .config import OptimizerConfig, RunConfig, TrainerConfig
from .run import train
from .trainer import Trainer, TrainingDiverged, epoch_order

__all__ = [
    "CheckpointError",
    "OptimizerConfig",
    "RunConfig",
    "Trainer",
    "TrainerConfig",
    "TrainingDiverged",
    "epoch_order",
    "train",
]
