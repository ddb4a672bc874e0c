"""Two plain ASGI middlewares that answer before the app sees a request: bearer-token auth and the body-size cap.

Both reply with the server's JSON error shape, {"error": code, "detail": message}.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Iterable
from typing import Any

Scope = dict[str, Any]


async def send_error(send, status: int, code: str, detail: str, headers: Iterable[tuple[bytes, bytes]] = ()) -> None:
    body = json.dumps({"error": code, "detail": detail}).encode()
    start = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()), *headers]
    await send({"type": "http.response.start", "status": status, "headers": start})
    await send({"type": "http.response.body", "body": body})


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope.get("headers", ()):
        if key.lower() == name:
            return value
    return None


class BearerAuth:
    """Requires `Authorization: Bearer <token>` on every path except `open_paths`; compared in constant time."""

    def __init__(self, app, token: str, open_paths: Iterable[str] = ("/health",)) -> None:
        self.app = app
        self.token = token.encode()
        self.open_paths = frozenset(open_paths)

    async def __call__(self, scope: Scope, receive, send) -> None:
        if scope["type"] != "http" or scope["path"] in self.open_paths:
            return await self.app(scope, receive, send)
        header = _header(scope, b"authorization") or b""
        scheme, _, given = header.partition(b" ")
        # compare_digest takes time independent of where the tokens differ (length aside)
        if scheme.lower() == b"bearer" and hmac.compare_digest(given.strip(), self.token):
            return await self.app(scope, receive, send)
        detail = (
            "Missing bearer token: send `Authorization: Bearer <token>` (the --token / TRANSFERKIT_TOKEN the server "
            "was started with)."
            if not header
            else "Wrong token: the Authorization header does not hold this server's bearer token."
        )
        await send_error(send, 401, "unauthorized", detail, [(b"www-authenticate", b'Bearer realm="transferkit"')])


class BodyLimit:
    """Refuses bodies over `max_bytes` with 413: by the declared Content-Length at once, and by counting the bytes
    that actually arrive (a missing or lying Content-Length, chunked uploads). The app gets the body buffered."""

    def __init__(self, app, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    def _too_large(self, send, size: str):
        detail = (
            f"The request body is {size}; the limit is {self.max_bytes:,} bytes. Send fewer or smaller inputs per "
            "request (or start the server with a larger --max-body-bytes)."
        )
        return send_error(send, 413, "body_too_large", detail, [(b"connection", b"close")])

    async def __call__(self, scope: Scope, receive, send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = _header(scope, b"content-length")
        if declared is not None:
            try:
                length = int(declared)
            except ValueError:
                return await send_error(
                    send, 400, "bad_content_length", f"Content-Length {declared!r} is not a number."
                )
            if length > self.max_bytes:
                return await self._too_large(send, f"{length:,} bytes (Content-Length)")
        chunks, received = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return  # the client went away: nothing to answer
            chunk = message.get("body", b"")
            received += len(chunk)
            if received > self.max_bytes:
                return await self._too_large(send, f"more than {self.max_bytes:,} bytes")
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body, delivered = b"".join(chunks), False

        async def replay() -> dict[str, Any]:
            nonlocal delivered
            if not delivered:
                delivered = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()  # after the body: wait for the disconnect, as the server would

        await self.app(scope, replay, send)
