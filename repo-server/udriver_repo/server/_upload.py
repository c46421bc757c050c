"""The upload API: `PUT /api/v1/packages/<filename>` (POST is accepted too).

Protocol (each step's failure is one status code; every attempt gets one audit row):

1. `Authorization: Bearer <token>` must name a live vendor token (RFC 6750 section 2.1)
   -> else 401 with `WWW-Authenticate: Bearer`. A header that is missing, too long, not
   printable ASCII or not shaped like a udriver token is refused before the repository is
   asked (`_request.bearer_token`); the token itself is never logged or echoed.
2. `<filename>` must be a plain wheel or deb basename (`_names.parse_upload_name`) -> 400;
   a query string -> 400 (`token-in-query` if it carries a token: tokens go in the header
   only); a `Content-Type` other than the file's own or `application/octet-stream`
   (e.g. `multipart/form-data`), or any `Content-Encoding` -> 415.
3. A declared `Content-Length` over the limit -> 413 before any of the body is read; with
   `Expect: 100-continue` (RFC 9110 section 10.1.1) steps 1-4 run before the client sends
   the body at all. A body without a length is cut off at the limit while streaming -> 413.
4. The vendor must have a free upload slot (`ServerConfig.vendor_uploads`) -> else 429
   with `Retry-After`; the slot is held until step 7.
5. The body is streamed to `REPO/staging/upload-<random>/<filename>` (0700 directory,
   0600 file), hashing as it goes; nothing else is written. Its first bytes must be the
   format's signature (`PK\\x03\\x04`, `!<arch>\\n`) -> else 400 `bad-body`. A pause
   between chunks over `body_timeout` or a body taking over `upload_timeout` -> 408 (the
   connection is closed). An empty body -> 400; a client that disconnects mid-body gets
   an `aborted` audit row (and no answer, it is gone).
6. In a worker thread, under the publish lock: the artifact must pass the acceptance gate
   `udriver.gate.admit` (bounded reads, names agreeing with the metadata, the .deb
   allow-list...; every problem in one message) -> 400 (GateIdTableError: a missing or
   invalid ID table -> 400 `invalid-id-table`); then `Repository.publish([file], vendor=...)`:
   PackageError -> 400, ScopeError -> 403 (nothing published), ConflictError -> 409,
   `unchanged` -> 200, else 201.
7. The staging directory is removed and the slot released, whatever happened (the
   `finally` runs when the body times out or the client goes away too).

A bug is still a 500, but with its audit row (`internal-error`), never a traceback.

Responses are JSON: `{"result": ..., ...}` on success, `{"error": code, "message": ...,
"status": N}` on failure.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import logging
import os
import secrets
import shutil
from dataclasses import asdict
from pathlib import Path
from typing import Any

from aiohttp import web

from udriver.errors import ManifestError, PackageError, RepositoryError, UdriverError
from udriver.gate import admit
from udriver.manifest import DriverManifest

from .._audit import escape_text
from .._errors import ConflictError, ScopeError
from .._types import PublishResult
from ._gateway import RepositoryLike, VendorView
from ._names import UploadName, parse_upload_name
from ._request import (
    MAGIC_LENGTH,
    Reject,
    bearer_token,
    check_content_type,
    check_magic,
    refuse_query,
)
from ._state import STATE, ServerConfig, ServerState, json_error

__all__ = ["UPLOAD_PATH", "expect_upload", "handle_upload"]

_log = logging.getLogger(__name__)

UPLOAD_PATH = "/api/v1/packages/{filename}"
# Where the expect handler leaves the authenticated vendor for the main handler.
_VENDOR: Any = (web.RequestKey("udriver_vendor", VendorView)
                if hasattr(web, "RequestKey") else "udriver_vendor")
_CHUNK = 256 * 1024
_RETRY_AFTER = 5  # seconds (RFC 9110 section 10.2.3) suggested with a 429
_Reject = Reject


async def _authenticate(request: web.Request, state: ServerState) -> VendorView:
    cached = request.get(_VENDOR)
    if isinstance(cached, VendorView):
        return cached
    token = bearer_token(request.headers.get("Authorization"))
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
    check_content_type(name.kind, request.headers.get("Content-Type"),
                       request.headers.get("Content-Encoding"))
    length = request.content_length
    if length is not None and length > state.config.max_upload_bytes:
        raise _Reject(413, "too-large", f"upload of {length} bytes is over the limit of "
                      f"{state.config.max_upload_bytes} bytes")
    return name


def _slot_check(state: ServerState, vendor: VendorView) -> None:
    if state.slots.in_use(vendor.name) >= state.slots.per_vendor:
        raise _Reject(429, "too-many-uploads",
                      f"vendor {vendor.name!r} already has {state.slots.per_vendor} uploads "
                      "in progress (the limit); retry when one has finished",
                      headers={"Retry-After": str(_RETRY_AFTER)})


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
    headers = dict(r.headers)
    if r.status == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="udriver"'
    resp = json_error(r.status, r.code, r.message, headers=headers or None)
    if r.status in (408, 413) or not request.content.is_eof():
        # Do not drain a body we refused: close the connection after answering, at once
        # (without the protocol's force_close aiohttp would read and discard the rest of
        # the body for up to its lingering_time, 10 s).
        resp.force_close()
        try:
            await resp.prepare(request)
            await resp.write_eof()
        except ConnectionError:
            pass  # the client is gone; nothing to answer
        protocol = request.protocol
        if protocol is not None:
            protocol.force_close()  # the answer is in the transport's buffer: flushed, then FIN
    return resp


async def expect_upload(request: web.Request) -> web.StreamResponse | None:
    """`Expect: 100-continue`: refuse before the body is sent, or tell the client to go on."""
    state: ServerState = request.app[STATE]
    vendor = None
    try:
        refuse_query(request.query, request.query_string)
        vendor = await _authenticate(request, state)
        _precheck(request, state)
        _slot_check(state, vendor)
    except _Reject as r:
        return await _reject_response(state, request, r, vendor)
    except UdriverError as e:
        return await _reject_response(state, request,
                                      _Reject(500, "repository-error", str(e)), vendor)
    except Exception as e:  # noqa: BLE001 - outside the middlewares: audit a bug here too
        _log.exception("upload check failed: %s", escape_text(str(e)))
        return await _reject_response(state, request, _Reject(
            500, "internal-error", "internal server error (see the server log)"), vendor)
    if request.headers.get("Expect", "").lower() != "100-continue":
        return await _reject_response(state, request, _Reject(
            417, "expectation-failed", f"unknown Expect: {request.headers.get('Expect')!r}"),
            vendor)
    if request.version >= (1, 1):
        await request.writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        request.writer.output_size = 0
    return None


async def _next_chunk(request: web.Request, config: ServerConfig, deadline: float) -> bytes:
    """The next chunk of the body (b"" at its end) within both body timeouts.

    Raises:
        Reject: 408 `timeout` when the client paused too long or the body took too long.
    """
    loop = asyncio.get_running_loop()
    left = deadline - loop.time()
    if left <= 0:
        raise _Reject(408, "timeout", f"the upload took over {config.upload_timeout:g} s "
                      "(`upload_timeout`); stopped reading")
    try:
        return await asyncio.wait_for(request.content.read(_CHUNK),
                                      min(config.body_timeout, left))
    except TimeoutError:
        if loop.time() >= deadline:
            raise _Reject(408, "timeout", f"the upload took over {config.upload_timeout:g} s "
                          "(`upload_timeout`); stopped reading") from None
        raise _Reject(408, "timeout", f"no body data for {config.body_timeout:g} s "
                      "(`body_timeout`); stopped reading") from None


async def _receive(request: web.Request, dest: Path, kind: str,
                   config: ServerConfig) -> tuple[int, str]:
    digest = hashlib.sha256()
    size = 0
    limit = config.max_upload_bytes
    deadline = asyncio.get_running_loop().time() + config.upload_timeout
    head = b""
    # Plain writes of 256 KiB chunks to local disk: cheaper than a thread hop per chunk.
    fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    with open(fd, "wb") as f:  # noqa: ASYNC230
        while chunk := await _next_chunk(request, config, deadline):
            if len(head) < MAGIC_LENGTH:
                head += chunk[:MAGIC_LENGTH]
                if len(head) >= MAGIC_LENGTH:
                    check_magic(kind, head)
            size += len(chunk)
            if size > limit:
                raise _Reject(413, "too-large", f"upload is over the limit of {limit} bytes "
                              "(stopped reading)")
            digest.update(chunk)
            f.write(chunk)
    if 0 < size < MAGIC_LENGTH:
        check_magic(kind, head)
    return size, digest.hexdigest()


def _validate_and_publish(repo: RepositoryLike, path: Path, name: UploadName,
                          vendor: str) -> tuple[DriverManifest, PublishResult]:
    # The one acceptance gate (udriver.gate.admit): the same verdict, with every problem
    # listed, as `udriver-repo publish` and `udriver check` give for the same file.
    manifest = admit(path).manifest
    # record=False: this request's one audit row (written by the caller) is the record.
    return manifest, repo.publish([path], vendor=vendor, record=False)


def _classify(e: UdriverError) -> _Reject:
    if isinstance(e, ScopeError):
        return _Reject(403, "out-of-scope", str(e))
    if isinstance(e, ConflictError):
        return _Reject(409, "conflict", str(e))
    if isinstance(e, ManifestError):
        return _Reject(400, "invalid-id-table", str(e))
    if isinstance(e, PackageError):
        return _Reject(400, "invalid-package", str(e))
    if isinstance(e, RepositoryError):
        _log.error("publish failed: %s", escape_text(str(e)))
        return _Reject(500, "repository-error", str(e))
    _log.error("publish failed: %s", escape_text(str(e)))
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
    slot: str | None = None
    try:
        refuse_query(request.query, request.query_string)
        vendor = await _authenticate(request, state)
        name = _precheck(request, state)
        if not state.slots.acquire(vendor.name):
            _slot_check(state, vendor)  # raises the 429
        slot = vendor.name
        stage = state.staging / f"upload-{secrets.token_hex(12)}"
        stage.mkdir(mode=0o700, parents=False)
        dest = stage / name.filename
        size, sha = await _receive(request, dest, name.kind, state.config)
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
        rejection: _Reject | None = r
    except ConnectionError as e:  # the client went away mid-body; nobody reads the answer
        rejection = _Reject(400, "aborted", f"upload aborted by the client: {e}")
    except UdriverError as e:  # the repository could not be opened to check the token
        rejection = _classify(e)
    except Exception as e:  # noqa: BLE001 - a bug: still one audit row, never a traceback
        _log.exception("upload failed: %s", escape_text(str(e)))
        rejection = _Reject(500, "internal-error", "internal server error (see the server log)")
    else:
        rejection = None
    finally:
        # Before any answer is sent: a client that has its answer finds staging clean.
        if stage is not None:
            shutil.rmtree(stage, ignore_errors=True)
        if slot is not None:
            state.slots.release(slot)
    if rejection is not None or vendor is None:
        rejection = rejection or _Reject(500, "internal-error", "no vendor after the checks")
        return await _reject_response(state, request, rejection, vendor, size, sha)
    unchanged = result.unchanged
    code = "unchanged" if unchanged else "published"
    status = 200 if unchanged else 201
    await _audit(state, status=status, result=code, vendor=vendor.name, client=_client(request),
                 filename=name.filename, size=size, sha256=sha)
    body = {"result": code, "filename": name.filename, "size": size, "sha256": sha,
            "vendor": vendor.name, "package": manifest.package, "version": manifest.version,
            "driver": manifest.driver, "modaliases": list(manifest.modaliases)}
    body["publish"] = _jsonable(asdict(result))
    return web.json_response(body, status=status)
