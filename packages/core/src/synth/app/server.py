"""The HTTP layer: a FastAPI app over one :class:`~synth.app.editor.Editor` (thin on purpose).

Routes: ``GET /`` the page (one static HTML file shipped in the package, no build step),
``GET /api/info``, ``POST /api/run`` (a recipe, JSON), ``POST /api/upload/label`` and
``POST /api/upload/image`` (the file's bytes as the body: no path is ever read from a
request). Every expected failure (bad recipe, bad upload, too large) is a JSON
``{"error": message}`` with status 400/413 that the page shows; anything else is a 500 with a
one-line message (the traceback goes to the server's log, not to the browser).
"""

# no `from __future__ import annotations`: FastAPI reads the handlers' annotations (Request)
# at definition time, and Request is a local name here (fastapi is imported on use)
import logging
from importlib import resources
from typing import TYPE_CHECKING, Any

from ..extras import require
from .recipe import RecipeError
from .uploads import MAX_UPLOAD_BYTES, UploadError

if TYPE_CHECKING:
    from .editor import Editor

__all__ = ["DEFAULT_HOST", "create_app", "page_html", "serve"]

#: The editor listens on the loopback interface unless told otherwise.
DEFAULT_HOST = "127.0.0.1"

log = logging.getLogger("synth.app")


def page_html() -> str:
    """The page: ``synth/app/static/index.html``."""
    return resources.files("synth.app").joinpath("static/index.html").read_text("utf-8")


def create_app(editor: "Editor") -> Any:
    """A FastAPI application serving ``editor`` (needs ``synth-core[app]``)."""
    fastapi = require("fastapi", extra="app", needed_by="synth app")
    responses = require("fastapi.responses", extra="app", needed_by="synth app")
    JSONResponse, HTMLResponse = responses.JSONResponse, responses.HTMLResponse
    Request = fastapi.Request

    app = fastapi.FastAPI(title="synth app", docs_url=None, redoc_url=None, openapi_url=None)
    html = page_html()

    def error(status: int, message: str) -> Any:
        return JSONResponse({"error": message}, status_code=status)

    async def body(request: Any, limit: int) -> bytes:
        """The request body, refused past ``limit`` bytes (checked while reading)."""
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            raise UploadError(
                f"the upload is {int(declared) / 2**20:.1f} MiB; the limit is "
                f"{limit / 2**20:.0f} MiB"
            )
        chunks, total = [], 0
        async for chunk in request.stream():
            total += len(chunk)
            if total > limit:
                raise UploadError(f"the upload is over the limit of {limit / 2**20:.0f} MiB")
            chunks.append(chunk)
        return b"".join(chunks)

    def guarded(fn: Any, *args: Any) -> Any:
        try:
            return JSONResponse(fn(*args))
        except (RecipeError, UploadError) as e:
            return error(413 if "limit" in str(e) else 400, str(e))
        except (ValueError, TypeError) as e:  # the model's own input checks
            return error(400, str(e))
        except Exception as e:
            log.exception("synth app: request failed")
            return error(500, f"the model failed on this request: {type(e).__name__}: {e}")

    @app.get("/", response_class=HTMLResponse)
    def page() -> Any:
        return HTMLResponse(html)

    @app.get("/api/info")
    def info() -> Any:
        return guarded(editor.info)

    # the model runs in a worker thread (_in_thread), so a slow model never blocks the event
    # loop: the page's fetch waits with a spinner and a clock, and other requests are served
    @app.post("/api/run")
    async def run(request: Request) -> Any:
        try:
            import json

            data = json.loads(await body(request, 4 * MAX_UPLOAD_BYTES))
        except UploadError as e:
            return error(413, str(e))
        except ValueError as e:
            return error(400, f"the request is not JSON: {e}")
        return await _in_thread(guarded, editor.run, data)

    @app.post("/api/upload/label")
    async def upload_label(request: Request) -> Any:
        try:
            data = await body(request, MAX_UPLOAD_BYTES)
        except UploadError as e:
            return error(413, str(e))
        return await _in_thread(guarded, editor.upload_label, data)

    @app.post("/api/upload/image")
    async def upload_image(request: Request) -> Any:
        try:
            data = await body(request, MAX_UPLOAD_BYTES)
        except UploadError as e:
            return error(413, str(e))
        return await _in_thread(guarded, editor.upload_image, data)

    return app


async def _in_thread(fn: Any, *args: Any) -> Any:
    """Run ``fn(*args)`` in a worker thread (the model's forward must not block the loop)."""
    from starlette.concurrency import run_in_threadpool

    return await run_in_threadpool(fn, *args)


def serve(editor: "Editor", host: str = DEFAULT_HOST, port: int = 7860, log_level: str = "warning"):
    """Serve ``editor`` with uvicorn until interrupted (``synth app``)."""
    uvicorn = require("uvicorn", extra="app", needed_by="synth app")
    uvicorn.run(create_app(editor), host=host, port=port, log_level=log_level)
