"""Uploaded bytes: which image format, and its size before decoding (decompression-bomb guard).

Only the header is read; nothing is decoded or written to disk here.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

MAX_PIXELS = 50_000_000   # 50 MP: above a 48 MP phone sensor; 150 MB once decoded as BGR


@dataclass(frozen=True, slots=True)
class ImageHeader:
    """Format and pixel size read from an image header.

    Attributes:
        format: ``jpeg``, ``png``, ``webp`` or ``bmp``.
        width, height: Pixels (None when the header does not say, e.g. a truncated JPEG).
    """

    format: str
    width: int | None
    height: int | None


def sniff(data: bytes) -> ImageHeader | None:
    """The image format and size of ``data`` from its magic bytes; None if not a supported image."""
    if data[:3] == b"\xff\xd8\xff":
        return ImageHeader("jpeg", *_jpeg_size(data))
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        w, h = struct.unpack(">II", data[16:24]) if len(data) >= 24 else (None, None)
        return ImageHeader("png", w, h)
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return ImageHeader("webp", *_webp_size(data))
    if data[:2] == b"BM" and len(data) >= 26:
        w, h = struct.unpack("<ii", data[18:26])
        return ImageHeader("bmp", abs(w), abs(h))
    return None


def _jpeg_size(data: bytes) -> tuple[int | None, int | None]:
    """Width and height from the first SOFn marker (ITU T.81 B.2.2)."""
    i = 2
    while i + 9 < len(data):
        if data[i] != 0xFF:
            i += 1
            continue
        marker = data[i + 1]
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7 or marker == 0xFF:
            i += 1 if marker == 0xFF else 2
            continue
        length = struct.unpack(">H", data[i + 2:i + 4])[0]
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            h, w = struct.unpack(">HH", data[i + 5:i + 9])
            return w, h
        i += 2 + length
    return None, None


def _webp_size(data: bytes) -> tuple[int | None, int | None]:
    """Canvas size of a VP8X, VP8 (lossy) or VP8L (lossless) WebP (RFC 9649)."""
    chunk = data[12:16]
    if chunk == b"VP8X" and len(data) >= 30:
        return int.from_bytes(data[24:27], "little") + 1, int.from_bytes(data[27:30], "little") + 1
    if chunk == b"VP8 " and len(data) >= 30:
        w, h = struct.unpack("<HH", data[26:30])
        return w & 0x3FFF, h & 0x3FFF
    if chunk == b"VP8L" and len(data) >= 25:
        bits = int.from_bytes(data[21:25], "little")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    return None, None
