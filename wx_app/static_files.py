"""Static files for phones on slow networks: gzip, a version in every URL, and long caching.

`url_for("static", filename=…)` adds `v=<hash of the file's content>`, so one URL always names
one version of a file. A response to the current version may be kept for a year
(`immutable`); a changed file gets a new URL, and a URL without the current version is
revalidated on every use (ETag). Text files (CSS, JS, SVG) are gzip-compressed once per
process, in memory, and sent compressed to clients that accept gzip: WeUI's 188 KB
stylesheet travels as about 23 KB. Other files (images, video) go through `send_file`,
which handles range requests.
"""

from __future__ import annotations

import gzip
import hashlib
import mimetypes
import os
from dataclasses import dataclass
from datetime import UTC, datetime

from flask import Flask, Response, abort, current_app, request, send_from_directory
from werkzeug.security import safe_join

EXTENSION = "wx_static_files"
COMPRESSIBLE_TYPES = {"text/css", "text/javascript", "application/javascript", "image/svg+xml",
                      "application/json", "text/plain"}
# Below this size the gzip header and a second cache entry cost more than they save.
MIN_GZIP_BYTES = 1024
# Text files above this size are streamed from disk instead of being held in memory.
MAX_MEMORY_BYTES = 2 * 1024 * 1024
VERSIONED_MAX_AGE = 365 * 24 * 3600


@dataclass(frozen=True)
class Asset:
    """One file of the static folder as it is on disk now."""

    path: str
    mtime_ns: int
    size: int
    version: str
    mimetype: str
    #: The file's bytes and their gzip encoding, for text files kept in memory; else None.
    body: bytes | None = None
    gzipped: bytes | None = None


class StaticFiles:
    """The static folder, with each file's version and compressed form cached per process."""

    def __init__(self, folder: str):
        self.folder = folder
        # Keyed by path; an entry is rebuilt when the file's mtime or size changes. Two
        # threads may rebuild the same entry at once; both results are equal, either wins.
        self._assets: dict[str, Asset] = {}

    def find(self, filename: str) -> Asset | None:
        """The asset for `filename` under the folder, or None when there is no such file."""
        path = safe_join(self.folder, filename)
        if path is None:
            return None
        try:
            stat = os.stat(path)
        except OSError:
            return None
        if not os.path.isfile(path):
            return None

        cached = self._assets.get(path)
        if cached and cached.mtime_ns == stat.st_mtime_ns and cached.size == stat.st_size:
            return cached
        asset = self._load(path, stat)
        self._assets[path] = asset
        return asset

    @staticmethod
    def _load(path: str, stat: os.stat_result) -> Asset:
        mimetype = mimetypes.guess_type(path)[0] or "application/octet-stream"
        in_memory = mimetype in COMPRESSIBLE_TYPES and stat.st_size <= MAX_MEMORY_BYTES
        if not in_memory:
            with open(path, "rb") as file:
                version = hashlib.file_digest(file, "sha256").hexdigest()[:10]
            return Asset(path, stat.st_mtime_ns, stat.st_size, version, mimetype)

        with open(path, "rb") as file:
            body = file.read()
        version = hashlib.sha256(body).hexdigest()[:10]
        gzipped = None
        if len(body) >= MIN_GZIP_BYTES:
            # mtime=0 keeps the encoding identical across processes and restarts.
            gzipped = gzip.compress(body, compresslevel=9, mtime=0)
        return Asset(path, stat.st_mtime_ns, stat.st_size, version, mimetype, body, gzipped)


def init_app(app: Flask) -> None:
    """Serve the app's static folder through `serve` and version every static URL."""
    files = StaticFiles(app.static_folder)
    app.extensions[EXTENSION] = files
    app.view_functions["static"] = serve

    @app.url_defaults
    def add_version(endpoint: str, values: dict) -> None:
        if endpoint != "static" or "v" in values:
            return
        asset = files.find(values.get("filename", ""))
        if asset is not None:
            values["v"] = asset.version


def serve(filename: str) -> Response:
    """GET /static/<filename>: the file, gzip-encoded when possible, cached by version."""
    files: StaticFiles = current_app.extensions[EXTENSION]
    asset = files.find(filename)
    if asset is None:
        abort(404)

    if asset.body is None:
        response = send_from_directory(files.folder, filename, mimetype=asset.mimetype)
    else:
        response = _text_response(asset)

    if request.args.get("v") == asset.version:
        response.cache_control.no_cache = None
        response.cache_control.public = True
        response.cache_control.max_age = VERSIONED_MAX_AGE
        response.cache_control.immutable = True
    else:
        response.cache_control.no_cache = True
    return response


def _text_response(asset: Asset) -> Response:
    use_gzip = asset.gzipped is not None and request.accept_encodings["gzip"] > 0
    response = Response(asset.gzipped if use_gzip else asset.body, mimetype=asset.mimetype)
    if use_gzip:
        response.content_encoding = "gzip"
    # Both encodings may sit in one cache, so each has its own ETag and caches key on the
    # request's Accept-Encoding.
    response.vary.add("Accept-Encoding")
    response.set_etag(f"{asset.version}-gzip" if use_gzip else asset.version)
    response.last_modified = datetime.fromtimestamp(asset.mtime_ns / 1e9, UTC)
    return response.make_conditional(request)
