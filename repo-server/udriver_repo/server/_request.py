"""What an upload request must look like before its body is read, and its first bytes.

Pure checks over header values and bytes, each raising `Reject` (status, short code,
message) so that the handler answers with one JSON error and one audit row. None of
them ever echoes a credential: a bad token is described (its length, the offending
character's position), never quoted.

Order in the handler: `bearer_token` (RFC 6750), `refuse_query` (tokens in the URL),
`check_content_type` (RFC 9110 section 8.3 and 8.4), then `check_magic` on the first
bytes of the body.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

__all__ = ["MAGIC_LENGTH", "MAX_AUTHORIZATION", "Reject", "bearer_token", "check_content_type",
           "check_magic", "refuse_query"]

MAX_AUTHORIZATION = 512
"""Longest `Authorization` value looked at; a token is 73 characters."""

# The shape `State.add_vendor` hands out: udr_<hex id>_<urlsafe base64 secret>.
_TOKEN = re.compile(r"udr_[0-9a-f]{1,64}_[A-Za-z0-9_-]{1,256}")
# RFC 6750 section 2.1: b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="
_B64TOKEN = re.compile(r"[A-Za-z0-9\-._~+/]+=*")

_WHEEL_TYPES = frozenset({"application/zip", "application/x-wheel+zip"})
_DEB_TYPES = frozenset({"application/vnd.debian.binary-package", "application/x-debian-package",
                        "application/x-deb"})
# Magic numbers: a wheel is a zip file whose first entry is a local file header
# (APPNOTE.TXT section 4.3.7, signature 0x04034b50); a deb is an ar archive (deb(5)).
_MAGIC = {"wheel": b"PK\x03\x04", "deb": b"!<arch>\n"}
MAGIC_LENGTH = max(len(m) for m in _MAGIC.values())


class Reject(Exception):
    """A rejection decided by the server: HTTP status, short code, message."""

    def __init__(self, status: int, code: str, message: str,
                 headers: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.headers = dict(headers or {})


def _unauthorized(why: str) -> Reject:
    return Reject(401, "unauthorized", why)


def bearer_token(value: str | None) -> str:
    """The token of an `Authorization: Bearer <token>` header value.

    aiohttp decodes header bytes as UTF-8 with surrogateescape, so bytes that are not
    UTF-8 arrive as lone surrogates; they are refused here, before the token reaches the
    repository core or any log.

    Raises:
        Reject: 401 `unauthorized` when the header is missing, not `Bearer`, too long,
            not printable ASCII, not an RFC 6750 b64token, or not shaped like a udriver
            token. The message names the problem, never the token.
    """
    if value is None or value.strip() == "":
        raise _unauthorized("missing `Authorization: Bearer <token>` header")
    if len(value) > MAX_AUTHORIZATION:
        raise _unauthorized(f"the `Authorization` header is {len(value)} characters long "
                            f"(limit {MAX_AUTHORIZATION}); a udriver token is 73")
    bad = next((i for i, ch in enumerate(value) if not (ch.isascii() and ch.isprintable())),
               None)
    if bad is not None:
        raise _unauthorized(f"the `Authorization` header has a non-ASCII or control "
                            f"character at position {bad}; a token is printable ASCII")
    scheme, _, token = value.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer":
        raise _unauthorized(f"the `Authorization` scheme is {scheme[:20]!r}, not `Bearer`: "
                            "send `Authorization: Bearer <token>` (RFC 6750)")
    if not token:
        raise _unauthorized("`Authorization: Bearer` without a token")
    if not _B64TOKEN.fullmatch(token) or not _TOKEN.fullmatch(token):
        raise _unauthorized(f"the token is not valid: malformed ({len(token)} characters); expected "
                            "`udr_<id>_<secret>` as printed by `udriver-repo vendor add`")
    return token


def refuse_query(query: Mapping[str, str], raw: str) -> None:
    """The upload endpoint takes no query parameters; a token there is refused.

    RFC 6750 section 2.3 allows `?access_token=`, but URLs end up in access logs, proxy
    logs and shell history (section 5.3 tells clients not to); udriver accepts the token
    in the `Authorization` header only.

    Raises:
        Reject: 400 `token-in-query` for an `access_token` (or any `*token*`) parameter,
            400 `bad-query` for any other query string.
    """
    if not raw:
        return
    if any("token" in k.lower() for k in query) or "token" in raw.lower():
        raise Reject(400, "token-in-query", "a token in the URL is refused (it would be "
                     "logged): send it as `Authorization: Bearer <token>` and revoke the "
                     "token you just sent with `udriver-repo vendor revoke`")
    raise Reject(400, "bad-query", f"the upload endpoint takes no query parameters "
                 f"(got {len(raw)} characters after `?`)")


def check_content_type(kind: str, content_type: str | None, encoding: str | None) -> None:
    """The body must be the file itself, declared as such or not at all.

    Accepted `Content-Type` (media type only, parameters ignored): none,
    `application/octet-stream`, and for a wheel `application/zip` or
    `application/x-wheel+zip`, for a deb `application/vnd.debian.binary-package` (or the
    older `application/x-debian-package`, `application/x-deb`). `multipart/form-data`,
    `text/html` and anything else -> 415. A `Content-Encoding` other than `identity`
    (RFC 9110 section 8.4) -> 415: aiohttp would inflate it, and the upload limit must
    count the bytes sent.

    Raises:
        Reject: 415 `unsupported-media-type`.
    """
    if encoding and encoding.strip().lower() not in ("", "identity"):
        raise Reject(415, "unsupported-media-type",
                     f"`Content-Encoding: {encoding[:40]}` is not accepted: send the file as "
                     "is (a wheel and a deb are already compressed)")
    if content_type is None or content_type.strip() == "":
        return
    media = content_type.split(";", 1)[0].strip().lower()
    allowed = {"application/octet-stream"} | (_WHEEL_TYPES if kind == "wheel" else _DEB_TYPES)
    if media not in allowed:
        hint = (" (the body is the file itself, not a form: `curl -T FILE`)"
                if media.startswith("multipart/") else "")
        raise Reject(415, "unsupported-media-type",
                     f"`Content-Type: {media[:60]}` is not accepted for a {kind}{hint}; use "
                     f"one of {', '.join(sorted(allowed))} or none")


def check_magic(kind: str, head: bytes) -> None:
    """The body must start with the file format's own signature, nothing before it.

    A zip file is read from its end, so HTML (or a multipart preamble) in front of a
    wheel would still unpack; the published file would then be a polyglot that a browser
    may render. A deb is an ar archive and must start with `!<arch>\\n`.

    Raises:
        Reject: 400 `bad-body` naming the expected signature and what came instead.
    """
    magic = _MAGIC[kind]
    if not head.startswith(magic):
        raise Reject(400, "bad-body", f"the body of a {kind} must start with {magic!r}; it "
                     f"starts with {head[:len(magic)]!r} (send the file itself, with "
                     "nothing before it)")
