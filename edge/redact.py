"""Masking of secrets in text that reaches logs, errors, metrics and MQTT payloads."""

from __future__ import annotations

import re

_USERINFO = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)(?P<user>[^:/@\s]*):(?P<password>[^@/\s]*)@")


def mask_url(text: str | int) -> str:
    """Replace the password of every ``scheme://user:password@`` in ``text`` with ``***``.

    Args:
        text: A URL (``rtsp://admin:pw@cam/stream``), a device index, or any text holding URLs.

    Returns:
        The text with passwords masked (``rtsp://admin:***@cam/stream``).
    """
    return _USERINFO.sub(lambda m: f"{m['scheme']}{m['user']}:***@", str(text))
