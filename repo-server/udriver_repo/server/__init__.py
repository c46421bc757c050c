"""repo-server's HTTP service: the static tree, the upload API, the audit log, a web page.

`serve(repo_path, host="127.0.0.1", port=8080)` runs it until SIGTERM/SIGINT (used by
`udriver-repo serve`); `create_app(repo_path)` returns the aiohttp application for tests
and for embedding. The HTTP API and the nginx/object-storage set-up are documented in
docs/serving.md.

Upload API:
    PUT /api/v1/packages/<filename>        (POST is the same)
    Authorization: Bearer <vendor token>   (never in the URL: 400)
    Content-Type: none, application/octet-stream or the file's own (else 415)
    body: the wheel or deb, as is (no multipart), starting with its signature

    201 published · 200 the same bytes were already published · 400 malformed or
    inconsistent package, file name or body · 401 no, malformed or wrong token ·
    403 IDs outside the vendor's scope · 408 body too slow · 409 same name and version,
    different bytes · 413 too large · 415 wrong Content-Type/Content-Encoding ·
    429 the vendor's upload slots are all in use (Retry-After).
    Every answer is JSON; errors are `{"error": code, "message": text, "status": N}`.

Run an app of `create_app` with `GuardedRunner` (as `serve` does) for the header timeout
and the escaping access log.
"""

from __future__ import annotations

from ._app import create_app, serve
from ._guard import GuardedRunner
from ._state import ServerConfig

__all__ = ["GuardedRunner", "ServerConfig", "create_app", "serve"]
