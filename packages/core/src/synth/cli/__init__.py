"""The ``synth`` command: inspect the registry, plugins and recipes, check model specs, train
models, draw samples from saved ones and evaluate them.

Commands (one module per group)::

    synth list [PATTERN] [--kind K] [--format table|markdown|json]      catalog
    synth info NAME [--json]                                            catalog
    synth plugins                                                       catalog
    synth recipes [PATTERN]                                             catalog
    synth compose SPEC [--check]                                        compose
    synth train CONFIG [--run-dir DIR] [--steps N] [--no-resume] [--device D]      train
    synth sample MODEL_DIR (--label-map PNG | --image PNG | --data SPEC [--index I ...])
                 [-n N] [--seed S] [--out DIR] [--num-classes K] [--size H W] [--sampler NAME]
                                                                        sample
    synth evaluate MODEL_DIR [MODEL_DIR ...] --data SPEC [-n N] [--metrics LIST] [--out DIR]
                   [--limit K] [--seed S] [--lpips-weights W] [--fid-weights PATH]
                                                                        evaluate
    synth demo [--recipe NAME] [--minutes M] [--out DIR] [--size S] [--set KEY=VALUE ...]
                                                                        demo

:mod:`~synth.cli.main` builds the parser from each module's ``add_parser``;
:mod:`~synth.cli.console` holds what they share (``CLIError``, printing, the registry) and
:mod:`~synth.cli.format` the table and summary helpers. Errors go to stderr as
``synth: error: ...``; the exit code is 1 for a failed command and 2 for a usage error
(argparse's convention).
"""

from __future__ import annotations

from .console import CLIError
from .format import format_markdown, format_table, markdown_summary, one_line, summary_line
from .main import main

__all__ = [
    "CLIError",
    "format_markdown",
    "format_table",
    "main",
    "markdown_summary",
    "one_line",
    "summary_line",
]
