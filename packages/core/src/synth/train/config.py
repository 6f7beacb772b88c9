"""The settings of a training run: :class:`TrainerConfig` (how to train) and :class:`RunConfig`
(a ``synth train`` file: model, data and trainer settings)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..config import format_validation_error

__all__ = ["FreezeRule", "OptimizerConfig", "RunConfig", "TrainerConfig", "validate"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class OptimizerConfig(_Strict):
    """Adam(W) settings of one network (TTUR = different ``lr`` per network)."""

    type: Literal["adam", "adamw"] = "adam"
    lr: float = Field(2e-4, gt=0)
    betas: tuple[float, float] = (0.5, 0.999)
    weight_decay: float = Field(0.0, ge=0)
    eps: float = Field(1e-8, gt=0)


class FreezeRule(_Strict):
    """Parameters whose names match ``pattern`` (fnmatch, e.g. ``"generator.global.*"``) get no
    updates until step ``until`` (pix2pixHD: train the enhancer with the global net frozen)."""

    pattern: str
    until: int = Field(ge=0)


class TrainerConfig(_Strict):
    """Everything about *how* a model is trained (the model spec says *what*)."""

    steps: int = Field(1000, ge=1, description="training iterations (batches)")
    batch_size: int = Field(4, ge=1, description="per process")
    num_workers: int = Field(0, ge=0)
    device: str = "auto"
    precision: Literal["off", "bf16", "fp16"] = "off"
    compile: bool = False
    compile_backend: str = "inductor"
    channels_last: bool = False
    optimizer: OptimizerConfig = Field(default_factory=OptimizerConfig)
    optimizers: dict[str, OptimizerConfig] = Field(
        default_factory=dict, description="per network, overriding `optimizer`"
    )
    decay_start: int | None = Field(
        None, ge=0, description="lr constant until this step, then linear decay to 0 at `steps`"
    )
    lr_milestones: list[int] | None = Field(
        None,
        description="Trainer steps at which every lr is multiplied by `lr_gamma` "
        "(torch MultiStepLR; a repeated step multiplies again); not with `decay_start`",
    )
    lr_gamma: float = Field(0.1, gt=0, description="lr factor at each of `lr_milestones`")
    ema: float | None = Field(None, ge=0, lt=1, description="generator EMA decay, e.g. 0.999")
    grad_clip: float | None = Field(None, gt=0)
    d_steps: int = Field(1, ge=1, description="discriminator steps per generator step")
    freeze: list[FreezeRule] = Field(default_factory=list)
    seed: int = 0
    run_dir: str = "runs/train"
    checkpoint_every: int = Field(500, ge=1)
    keep_last: int = Field(3, ge=1)
    log_every: int = Field(10, ge=1)
    sample_every: int | None = Field(500, ge=1)
    sample_inputs: int = Field(4, ge=1, description="conditions per sample grid")
    num_samples: int = Field(4, ge=1, description="samples per condition in the grid")
    progress: bool | None = Field(
        None,
        description="True: a tqdm bar; False: silent; default: the bar when stderr is a TTY, "
        "else a plain line on stderr every log_every steps (logs, CI) and 'resumed from step N'",
    )
    tensorboard: bool | None = Field(
        None,
        description="TensorBoard scalars (torch.utils.tensorboard) in run_dir/tensorboard; "
        "default: when the tensorboard package is installed",
    )
    time_limit: float | None = Field(
        None,
        gt=0,
        description="seconds of training in this fit(); then it ends as if `steps` were reached "
        "(checkpoint, exported model, loss curve)",
    )


class RunConfig(_Strict):
    """A ``synth train`` config file: the model, the data and the training settings.

    When ``model`` names a recipe (its name, or a spec with ``base: <recipe>``), the recipe's
    trainer settings are the defaults of ``train`` (see :func:`synth.train.train`).
    """

    model: Any
    data: dict[str, Any]
    train: TrainerConfig = Field(default_factory=TrainerConfig)


def validate(cls: type[BaseModel], data: Any, what: str) -> Any:
    """``data`` as a ``cls`` (returned as is when it already is one); a bad field is a
    :class:`synth.ConfigError` naming ``what``, the field and the fix."""
    if isinstance(data, cls):
        return data
    try:
        return cls.model_validate(data or {})
    except ValidationError as e:
        raise format_validation_error(e, what, cls) from None
