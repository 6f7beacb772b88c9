"""Training (layer 6): the Trainer and its run configuration."""

from .trainer import (
    CheckpointError,
    OptimizerConfig,
    RunConfig,
    Trainer,
    TrainerConfig,
    TrainingDiverged,
    epoch_order,
    train,
)

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
