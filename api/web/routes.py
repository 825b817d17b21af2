"""The workbench and the public register: server-rendered pages over the services the API
uses (registry queries, the workflow's state, `act`, the document store), never the API
over HTTP. Chinese by default; forms work without JavaScript; htmx only refreshes the
inbox and previews the rules on the new-parcel form.

One module per page family, gathered here under /ui: `signin`, `inbox`, `new_parcel`
(before `parcel`, whose `/parcels/{parcel_id}` would take `/parcels/new`), `parcel`,
`register`; what they share is in `pages` and `templating`.
"""

from __future__ import annotations

from fastapi import APIRouter, FastAPI
from fastapi.responses import FileResponse, RedirectResponse, Response

from api.web import i18n, inbox, new_parcel, parcel, register, signin
from api.web.templating import STATIC, environment

router = APIRouter(prefix="/ui", include_in_schema=False)
MEDIA = {".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml"}


@router.get("/static/{name}")
async def static(name: str) -> Response:
    """Assets served from the package (no CDN): htmx, the stylesheet, the small script."""
    path = STATIC / name
    if "/" in name or name.startswith(".") or not path.is_file():
        return Response(status_code=404)
    return FileResponse(
        path,
        media_type=MEDIA.get(path.suffix, "application/octet-stream"),
        headers={"Cache-Control": "public, max-age=86400", "X-Content-Type-Options": "nosniff"},
    )


@router.get("")
async def home() -> Response:
    return RedirectResponse("/ui/inbox", status_code=303)


for family in (signin, inbox, new_parcel, parcel, register):
    router.include_router(family.router)


def install(app: FastAPI) -> None:
    """Serve the workbench from `app` (one line in api/app.py's create_app); once."""
    if getattr(app.state, "workbench", False):
        return
    i18n.preload()
    environment()
    signin.hide_tokens_in_access_log()
    app.include_router(router)
    app.state.workbench = True
