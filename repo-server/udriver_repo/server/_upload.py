"""The upload API: `PUT /api/v1/packages/<filename>` (POST is accepted too).

Protocol (each step's failure is one status code; every attempt gets one audit row):

1. `Authorization: Bearer <token>` must name a live vendor token (RFC 6750 section 2.1)
   -> else 401 with `WWW-Authenticate: Bearer`.
2. `<filename>` must be a plain wheel or deb basename (`_names.parse_upload_name`) -> 400.
3. A declared `Content-Length` over the limit -> 413 before any of the body is read; with
   `Expect: 100-continue` (RFC 9110 section 10.1.1) steps 1-3 run before the client sends
   the body at all. A body without a length is cut off at the limit while streaming -> 413.
4. The body is streamed to `REPO/staging/upload-<random>/<filename>` (0700 directory),
   hashing as it goes; nothing else is written. An empty body -> 400; a client that
   disconnects mid-body gets an `aborted` audit row (and no answer, it is gone).
5. In a worker thread, under the publish lock: the artifact must pass the acceptance gate
   `udriver.gate.admit` (bounded reads, names agreeing with the metadata, the .deb
   allow-list...; every problem in one message) -> 400 (GateIdTableError: a missing or
   invalid ID table -> 400 `invalid-id-table`); then `Repository.publish([file], vendor=...)`:
   PackageError -> 400, ScopeError -> 403 (nothing published), ConflictError -> 409,
   `unchanged` -> 200, else 201.
6. The staging directory is removed, whatever happened.

Responses are JSON: `{"result": ..., ...}` on success, `{"error": code, "message": ...,
"status": N}` on failure.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import logging
import secrets
import shutil
from dataclasses import asdict, is_dataclass
from pathlib import Path
from typing import Any

from aiohttp import web

from udriver.errors import ManifestError, PackageError, RepositoryError, UdriverError
from udriver.gate import admit
from udriver.manifest import DriverManifest

from ._gateway import RepositoryLike, VendorView
from ._names import UploadName, parse_upload_name
from ._state import STATE, ServerState, json_error

__all__ = ["UPLOAD_PATH", "expect_upload", "handle_upload"]

_log = logging.getLogger(__name__)

UPLOAD_PATH = "/api/v1/packages/{filename}"
# Where the expect handler leaves the authenticated vendor for the main handler.
_VENDOR: Any = (web.RequestKey("udriver_vendor", VendorView)
                if hasattr(web, "RequestKey") else "udriver_vendor")
_CHUNK = 256 * 1024


class _Reject(Exception):
    """A rejection decided by the handler: status, short code, message."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def _bearer(request: web.BaseRequest) -> str | None:
    # RFC 6750 section 2.1: credentials = "Bearer" 1*SP b64token
    value = request.headers.get("Authorization", "")
    scheme, _, token = value.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        return None
    return token


async def _authenticate(request: web.Request, state: ServerState) -> VendorView:
    cached = request.get(_VENDOR)
    if isinstance(cached, VendorView):
        return cached
    token = _bearer(request)
    if token is None:
        raise _Reject(401, "unauthorized", "missing `Authorization: Bearer <token>` header")
    vendor = await state.gateway.authenticate(token)
    if vendor is None or vendor.revoked:
        raise _Reject(401, "unauthorized", "the token is not valid (unknown or revoked)")
    request[_VENDOR] = vendor
    return vendor


def _precheck(request: web.Request, state: ServerState) -> UploadName:
    try:
        name = parse_upload_name(request.match_info["filename"])
    except PackageError as e:
        raise _Reject(400, "bad-filename", str(e)) from e
    length = request.content_length
    if length is not None and length > state.config.max_upload_bytes:
        raise _Reject(413, "too-large", f"upload of {length} bytes is over the limit of "
                      f"{state.config.max_upload_bytes} bytes")
    return name


def _client(request: web.BaseRequest) -> str | None:
    """The peer address, plus any X-Forwarded-For a proxy added (logged, never trusted)."""
    xff = request.headers.get("X-Forwarded-For", "").strip()
    if xff:
        return f"{request.remote} (X-Forwarded-For: {xff[:100]})"
    return request.remote


async def _audit(state: ServerState, **row: Any) -> None:
    # SQLite commits fsync and may wait for the core's write lock: never on the event loop.
    await asyncio.get_running_loop().run_in_executor(
        None, functools.partial(state.audit.record, action="upload", **row))


async def _reject_response(state: ServerState, request: web.Request, r: _Reject,
                           vendor: VendorView | None, size: int | None = None,
                           sha256: str | None = None) -> web.Response:
    await _audit(state, status=r.status, result=r.code, vendor=vendor.name if vendor else None,
                 client=_client(request), filename=request.match_info.get("filename"),
                 size=size, sha256=sha256, message=r.message)
    headers = {"WWW-Authenticate": 'Bearer realm="udriver"'} if r.status == 401 else None
    resp = json_error(r.status, r.code, r.message, headers=headers)
    if r.status == 413 or (r.status == 401 and request.content_length):
        # Do not drain a body we refused: close the connection after answering.
        resp.force_close()
    return resp


async def expect_upload(request: web.Request) -> web.StreamResponse | None:
    """`Expect: 100-continue`: refuse before the body is sent, or tell the client to go on."""
    state: ServerState = request.app[STATE]
    vendor = None
    try:
        vendor = await _authenticate(request, state)
        _precheck(request, state)
    except _Reject as r:
        return await _reject_response(state, request, r, vendor)
    except UdriverError as e:
        return await _reject_response(state, request,
                                      _Reject(500, "repository-error", str(e)), vendor)
    if request.headers.get("Expect", "").lower() != "100-continue":
        return await _reject_response(state, request, _Reject(
            417, "expectation-failed", f"unknown Expect: {request.headers.get('Expect')!r}"),
            vendor)
    if request.version >= (1, 1):
        await request.writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        request.writer.output_size = 0
    return None


async def _receive(request: web.Request, dest: Path, limit: int) -> tuple[int, str]:
    digest = hashlib.sha256()
    size = 0
    # Plain writes of 256 KiB chunks to local disk: cheaper than a thread hop per chunk.
    with open(dest, "xb") as f:  # noqa: ASYNC230
        async for chunk in request.content.iter_chunked(_CHUNK):
            size += len(chunk)
            if size > limit:
                raise _Reject(413, "too-large", f"upload is over the limit of {limit} bytes "
                              "(stopped reading)")
            digest.update(chunk)
            f.write(chunk)
    return size, digest.hexdigest()


def _validate_and_publish(repo: RepositoryLike, path: Path, name: UploadName,
                          vendor: str) -> tuple[DriverManifest, Any]:
    # The one acceptance gate (udriver.gate.admit): the same verdict, with every problem
    # listed, as `udriver-repo publish` and `udriver check` give for the same file.
    manifest = admit(path).manifest
    return manifest, repo.publish([path], vendor=vendor)


def _is(e: BaseException, class_name: str) -> bool:
    # The core defines ScopeError and ConflictError (RepositoryError subclasses); match by
    # name through the MRO so the server does not depend on which core module holds them.
    return any(c.__name__ == class_name for c in type(e).__mro__)


def _classify(e: UdriverError) -> _Reject:
    if _is(e, "ScopeError"):
        return _Reject(403, "out-of-scope", str(e))
    if _is(e, "ConflictError"):
        return _Reject(409, "conflict", str(e))
    if isinstance(e, ManifestError):
        return _Reject(400, "invalid-id-table", str(e))
    if isinstance(e, PackageError):
        return _Reject(400, "invalid-package", str(e))
    if isinstance(e, RepositoryError):
        _log.error("publish failed: %s", e)
        return _Reject(500, "repository-error", str(e))
    _log.error("publish failed: %s", e)
    return _Reject(500, "internal-error", str(e))


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, set, frozenset)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, (str, int, float, bool)) or obj is None:
        return obj
    return str(obj)


async def handle_upload(request: web.Request) -> web.Response:
    """Receive, validate and publish one wheel or deb. See the module docstring."""
    state: ServerState = request.app[STATE]
    vendor: VendorView | None = None
    size: int | None = None
    sha: str | None = None
    stage: Path | None = None
    try:
        vendor = await _authenticate(request, state)
        name = _precheck(request, state)
        stage = state.staging / f"upload-{secrets.token_hex(12)}"
        stage.mkdir(mode=0o700, parents=False)
        dest = stage / name.filename
        size, sha = await _receive(request, dest, state.config.max_upload_bytes)
        if size == 0:
            raise _Reject(400, "empty", "the request body is empty")
        vname = vendor.name
        try:
            manifest, result = await state.gateway.call_locked(
                lambda repo: _validate_and_publish(repo, dest, name, vname))
        except UdriverError as e:
            r = _classify(e)
            # Never show server paths: name the file as the client did.
            r.message = r.message.replace(str(dest), name.filename).replace(
                str(stage), "staging")
            raise r from e
    except _Reject as r:
        return await _reject_response(state, request, r, vendor, size, sha)
    except ConnectionError as e:  # the client went away mid-body; nobody reads the answer
        aborted = _Reject(400, "aborted", f"upload aborted by the client: {e}")
        return await _reject_response(state, request, aborted, vendor, size, sha)
    except UdriverError as e:  # the repository could not be opened to check the token
        return await _reject_response(state, request, _classify(e), vendor, size, sha)
    finally:
        if stage is not None:
            shutil.rmtree(stage, ignore_errors=True)
    unchanged = bool(getattr(result, "unchanged", False))
    code = "unchanged" if unchanged else "published"
    status = 200 if unchanged else 201
    await _audit(state, status=status, result=code, vendor=vendor.name, client=_client(request),
                 filename=name.filename, size=size, sha256=sha)
    body = {"result": code, "filename": name.filename, "size": size, "sha256": sha,
            "vendor": vendor.name, "package": manifest.package, "version": manifest.version,
            "driver": manifest.driver, "modaliases": list(manifest.modaliases)}
    if is_dataclass(result) and not isinstance(result, type):
        body["publish"] = _jsonable(asdict(result))
    return web.json_response(body, status=status)
