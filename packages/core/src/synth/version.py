"""The version of synth-core (one place; the package metadata and saved models read it)."""

__version__ = "1.0.0.dev0"
