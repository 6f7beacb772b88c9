"""Exceptions raised by synth. Every message names the field or part, the bad value, and the fix."""

from __future__ import annotations

__all__ = [
    "CapabilityError",
    "CheckpointError",
    "ComposeError",
    "ConfigError",
    "PluginError",
    "RegistryError",
    "UnknownPartError",
    "WeightsNotFoundError",
]


class ConfigError(ValueError):
    """A part's config (or a model spec) failed validation, or a config file could not be read
    (the message names the file)."""


class CheckpointError(ValueError):
    """A checkpoint does not hold what a converter (``from_official*``) needs: the message says
    what was expected and what the checkpoint looks like instead."""


class ComposeError(ValueError):
    """The parts of a model spec do not fit together (checked before any tensor is allocated)."""


class RegistryError(ValueError):
    """A registration is invalid: bad name, wrong namespace, or a name registered twice."""


class UnknownPartError(RegistryError, KeyError):
    """A part or recipe name is not registered."""

    def __str__(self) -> str:  # KeyError would wrap the message in quotes
        return str(self.args[0]) if self.args else ""


class PluginError(RuntimeError):
    """A plugin failed to load (raised only in strict mode; otherwise recorded and skipped)."""


class CapabilityError(TypeError):
    """A part was asked for something it does not provide (e.g. a posterior from a prior-only
    injector)."""


class WeightsNotFoundError(FileNotFoundError):
    """Pretrained weights are needed and no local file was found (downloads are off or failed)."""
