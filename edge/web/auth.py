"""HTTP basic auth and security headers as one small ASGI middleware."""

from __future__ import annotations

import base64
import binascii
import hmac

REALM = "edge-fer"
SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"content-security-policy",
     b"default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
     b"connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"),
]


def check_basic(header: bytes | None, password: str) -> bool:
    """Whether an ``Authorization`` header carries ``password`` (any user name), compared in constant time.

    Args:
        header: The raw header value (``Basic base64(user:password)``), or None.
        password: The configured password.
    """
    if not header or not header[:6].lower() == b"basic ":
        return False
    try:
        decoded = base64.b64decode(header[6:].strip(), validate=True)
    except (binascii.Error, ValueError):
        return False
    _user, sep, given = decoded.partition(b":")
    return bool(sep) and hmac.compare_digest(given, password.encode("utf-8"))


class GuardMiddleware:
    """Adds :data:`SECURITY_HEADERS` to every response; with a password, answers 401 without valid basic auth.

    Args:
        app: The wrapped ASGI app.
        password: Basic-auth password; None serves without auth (loopback only, enforced by the config).
    """

    def __init__(self, app, password: str | None) -> None:
        self.app = app
        self.password = password

    async def __call__(self, scope, receive, send) -> None:
        """ASGI entry: non-HTTP scopes pass through; HTTP requests are checked, responses get the headers."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self.password is not None:
            header = dict(scope["headers"]).get(b"authorization")
            if not check_basic(header, self.password):
                await _unauthorized(send)
                return

        async def send_with_headers(message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), *SECURITY_HEADERS]}
            await send(message)

        await self.app(scope, receive, send_with_headers)


async def _unauthorized(send) -> None:
    body = b"401 Unauthorized: this edge-fer page needs its password (any user name)\n"
    await send({"type": "http.response.start", "status": 401,
                "headers": [(b"www-authenticate", f'Basic realm="{REALM}", charset="UTF-8"'.encode()),
                            (b"content-type", b"text/plain; charset=utf-8"),
                            (b"content-length", str(len(body)).encode()), *SECURITY_HEADERS]})
    await send({"type": "http.response.body", "body": body})
