"""The workbench and the public register: server-rendered pages under /ui.

`api.web.routes.install(app)` serves them from the API's app. The body guard of
api/app.py reads their form posts with the two names below (urlencoded or multipart,
one document's worth of bytes plus the form's fields).
"""

from __future__ import annotations

PREFIX = "/ui/"
FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")
FORM_FIELDS_BYTES = 1 << 20  # besides the file: an investigation's sample rows, six inputs each


def form_limit(max_document_bytes: int) -> int:
    """The most a workbench form post may carry (an action form uploads inline)."""
    return max_document_bytes + FORM_FIELDS_BYTES
