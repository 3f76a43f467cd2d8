"""edge.redact.mask_url: no URL password survives, everything else stays readable."""

import pytest

from edge.redact import mask_url


@pytest.mark.parametrize("url, masked", [
    ("rtsp://admin:S3cr3tPW@cam.local:554/stream1", "rtsp://admin:***@cam.local:554/stream1"),
    ("rtsp://admin:p@ss:w@rd@10.0.0.2/live", "rtsp://admin:***@10.0.0.2/live"),  # unescaped '@' and ':'
    ("rtsp://admin:p%40ss@10.0.0.2/live", "rtsp://admin:***@10.0.0.2/live"),  # percent-encoded
    ("http://:only-pw@cam/mjpg", "http://:***@cam/mjpg"),
    ("rtsp://u:pw@host", "rtsp://u:***@host"),  # no path
    ("rtsp://u:pw@host?x=1#frag", "rtsp://u:***@host?x=1#frag"),
    ("http://cam/video.cgi?user=admin&pwd=S3cr3tPW&rate=0", "http://cam/video.cgi?user=admin&pwd=***&rate=0"),
    ("http://cam/v?Password=abc;token=def", "http://cam/v?Password=***;token=***"),
    ("http://u:a@b@cam/v?api_key=k1", "http://u:***@cam/v?api_key=***"),
])
def test_passwords_are_masked(url, masked):
    assert mask_url(url) == masked


@pytest.mark.parametrize("text", [
    "rtsp://cam.local:554/stream1", "rtsp://admin@cam.local/live", "/dev/video0", "clip.mp4", "0",
    "http://cam/v?user=admin&rate=0", "no URL here: a@b, x:y",
])
def test_text_without_a_password_is_unchanged(text):
    assert mask_url(text) == text


def test_every_url_in_a_longer_text_and_ints():
    line = "source cam0 (rtsp://a:one@h1/x), cam1 (rtsp://b:two@h2/y)\tfailed: rtsp://c:three@h3"
    out = mask_url(line)
    assert out == "source cam0 (rtsp://a:***@h1/x), cam1 (rtsp://b:***@h2/y)\tfailed: rtsp://c:***@h3"
    assert mask_url(0) == "0"
    assert mask_url(mask_url(line)) == out  # idempotent
