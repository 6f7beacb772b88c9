"""Text for the terminal and for README tables: aligned columns, markdown tables, one-line
summaries of docstrings."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any

__all__ = ["format_markdown", "format_table", "markdown_summary", "one_line", "summary_line"]


def format_table(headers: Sequence[str], rows: Iterable[Sequence[Any]], indent: str = "") -> str:
    """Columns aligned with spaces, a dashed rule under the header, no trailing blanks."""
    cells = [[str(h) for h in headers]] + [["" if c is None else str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = []
    for j, row in enumerate(cells):
        lines.append(indent + "  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip())
        if j == 0:
            lines.append(indent + "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def format_markdown(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """A GitHub-flavoured markdown table (``|`` in cells escaped, line breaks as spaces)."""

    def cell(c: Any) -> str:
        text = " ".join(("" if c is None else str(c)).split())
        return text.replace("|", "\\|")

    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(cell(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)


def one_line(text: str | None, limit: int = 160) -> str:
    """The first non-empty line of ``text``, cut to ``limit`` characters."""
    line = next((ln.strip() for ln in (text or "").splitlines() if ln.strip()), "")
    return line if len(line) <= limit else line[: limit - 3].rstrip() + "..."


def _first_paragraph(doc: str | None) -> str:
    paragraph = []
    for ln in (doc or "").strip().splitlines():
        if not ln.strip():
            break
        paragraph.append(ln.strip())
    return " ".join(paragraph)


def _first_sentence(text: str) -> str:
    m = re.match(r"(.+?[.!?])(?=\s+[A-Z`(\"]|$)", text)
    return m.group(1) if m else text


def summary_line(doc: str | None, limit: int = 120) -> str:
    """A docstring's one-line summary: its first paragraph joined into one line; when that is
    longer than ``limit``, its first sentence, cut to ``limit`` characters if still too long."""
    text = _first_paragraph(doc)
    if len(text) > limit:
        text = _first_sentence(text)
    return one_line(text, limit)


def markdown_summary(doc: str | None, limit: int = 200) -> str:
    """The summary for ``--format markdown``, where no terminal width applies: the first
    paragraph in one line, or its first sentence when the paragraph is longer than ``limit``;
    never cut."""
    text = _first_paragraph(doc)
    return _first_sentence(text) if len(text) > limit else text
