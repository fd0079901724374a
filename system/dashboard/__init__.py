"""The dashboard: one static page (HTML, a script, a stylesheet) the gateway serves at ``/``.

No build step and nothing from a CDN: the files here are what the browser gets. They are
read once per process into memory (``assets``), so serving them never touches the disk
from a thread — a thread would let virtual time jump while a test loads the page — and a
harness building a gateway per scenario does not read them again each time.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources

# URL path → (file in this package, media type)
_FILES = {
    "/": ("index.html", "text/html; charset=utf-8"),
    "/static/dashboard.js": ("dashboard.js", "text/javascript; charset=utf-8"),
    "/static/dashboard.css": ("dashboard.css", "text/css; charset=utf-8"),
}


@dataclass(frozen=True)
class Asset:
    body: bytes
    media_type: str


@functools.cache
def assets() -> Mapping[str, Asset]:
    """Every file of the page by the URL path it is served at (read on the first call)."""
    package = resources.files(__name__)
    return {
        path: Asset(package.joinpath(name).read_bytes(), media_type)
        for path, (name, media_type) in _FILES.items()
    }
