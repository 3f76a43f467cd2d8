"""Masking of secrets in text that reaches logs, errors, metrics and MQTT payloads.

Camera URLs carry credentials in two places, both masked here:

* the userinfo, ``rtsp://user:password@host/...`` (RFC 3986 §3.2.1). As in
  FFmpeg's ``av_url_split``, the userinfo ends at the *last* ``@`` before the
  first ``/``, ``?`` or ``#``, so a password holding an unescaped ``@`` or
  ``:`` is masked whole;
* query parameters that many IP cameras take instead (``?user=admin&pwd=...``,
  ``&password=...``, ``&token=...``), by name, case-insensitive.

The user name stays visible (it tells which account connects); the password
becomes ``***``.
"""

from __future__ import annotations

import re

MASK = "***"

# scheme://user:password@   (password: anything up to the last '@' of the authority)
_USERINFO = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)(?P<user>[^:/?#@\s]*):(?P<password>[^/?#\s]*)@")
# ?pwd=secret / &password=secret / ;token=secret
_QUERY_SECRET = re.compile(
    r"(?P<key>[?&;](?:password|passwd|pass|pwd|pw|secret|token|access_token|auth|api_?key|key)=)(?P<value>[^&;#\s]*)",
    re.IGNORECASE)


def mask_url(text: str | int) -> str:
    """Mask every URL password in ``text``: userinfo passwords and secret query parameters.

    Args:
        text: A URL (``rtsp://admin:pw@cam/stream``), a device index, or any
            text holding URLs (a log line, an exception message).

    Returns:
        The text with passwords replaced by ``***`` (``rtsp://admin:***@cam/stream``,
        ``http://cam/video?user=admin&pwd=***``); text without a secret unchanged.
    """
    masked = _USERINFO.sub(lambda m: f"{m['scheme']}{m['user']}:{MASK}@", str(text))
    return _QUERY_SECRET.sub(lambda m: f"{m['key']}{MASK}" if m["value"] else m[0], masked)
