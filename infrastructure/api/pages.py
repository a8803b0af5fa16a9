"""The web page: upload files and watch them being processed, in a browser.

Server-rendered without a template engine: the HTML shells are static files and
``static/app.js`` fills them from the JSON API with ``textContent`` (filenames are someone
else's input; nothing they contain is ever parsed as markup). The script calls the same
routes as any client, with the API key the user typed as its Bearer token, so the page
needs no authentication of its own.
"""

from __future__ import annotations

from pathlib import Path
from uuid import UUID

from fastapi import APIRouter, HTTPException
from fastapi.responses import FileResponse

_HERE = Path(__file__).parent
_TEMPLATES = _HERE / "templates"
_STATIC = _HERE / "static"
# Served by name from this fixed list: a request can never name another file.
_ASSETS = {"app.js": "text/javascript", "style.css": "text/css"}

# Only this origin's script and style, no inline code: a filename that slipped through as
# markup still could not run.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
    "img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}

router = APIRouter(include_in_schema=False)


def _page(name: str) -> FileResponse:
    return FileResponse(_TEMPLATES / name, media_type="text/html", headers=_HEADERS)


@router.get("/")
def artifacts_page() -> FileResponse:
    return _page("artifacts.html")


@router.get("/ui/artifacts/{artifact_id}")
def artifact_page(artifact_id: UUID) -> FileResponse:
    # The id is checked here so a malformed link is a 422, not an empty page; the script
    # reads it back from the path.
    return _page("artifact.html")


@router.get("/ui/static/{name}")
def asset(name: str) -> FileResponse:
    if name not in _ASSETS:
        raise HTTPException(status_code=404, detail="no such asset")
    return FileResponse(_STATIC / name, media_type=_ASSETS[name], headers=_HEADERS)
