"""Describing an error by its message and where in the part's code it was raised."""

from __future__ import annotations

import re
import traceback


def _brief(e: BaseException, limit: int = 400) -> str:
    """``Type: first lines of the message`` plus where in the part's code it was raised."""
    msg = " ".join(str(e).split())
    if len(msg) > limit:
        msg = msg[: limit - 3] + "..."
    where = ""
    frames = traceback.extract_tb(e.__traceback__)
    for fr in reversed(frames):
        if "/synth/testing/" not in fr.filename.replace("\\", "/"):
            where = f" (at {fr.filename}:{fr.lineno} in {fr.name})"
            break
    return f"{type(e).__name__}: {msg}{where}"


_USER_FRAME = re.compile(r'File "([^"]+)", line (\d+), in (\S+)')


def _graph_break(e: BaseException) -> str:
    """The reason and user-code location of a dynamo error."""
    lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
    reason = lines[0] if lines else type(e).__name__
    expl = next((ln for ln in lines if ln.startswith("Explanation:")), "")
    frames = [m for m in (_USER_FRAME.search(ln) for ln in lines) if m]
    frames = [m for m in frames if "/synth/testing/" not in m.group(1)] or frames
    where = ""
    if frames:
        m = frames[-1]
        where = f" at {m.group(1)}:{m.group(2)} in {m.group(3)}"
    text = f"{type(e).__name__}: {reason}"
    if expl:
        text += f" ({expl[len('Explanation:') :].strip()})"
    return text + where
