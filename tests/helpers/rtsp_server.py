"""A real RTSP server for the integration tests (GStreamer gst-rtsp-server).

Run with the system Python that has python3-gi (Debian packages
``python3-gi gir1.2-gst-rtsp-server-1.0 gstreamer1.0-plugins-{base,good,bad}``):

    /usr/bin/python3 tests/helpers/rtsp_server.py --port 8554 --path /live --file clip.mp4

Serves the H.264 track of the file without re-encoding on
``rtsp://127.0.0.1:PORT/PATH`` (loopback only); prints ``READY`` when listening
and runs until SIGTERM/SIGINT. ``--auth USER:PASSWORD`` requires RTSP Basic
authentication (RFC 2326 §D.1 / RFC 7617) for that account: a client without
it gets ``401 Unauthorized``.
"""

import argparse
import signal
import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402


def _require_auth(server, factory, user: str, password: str) -> None:
    """Only ``user``/``password`` (role ``user``) may access and construct the media."""
    auth = GstRtspServer.RTSPAuth()
    token = GstRtspServer.RTSPToken()
    token.set_string("media.factory.role", "user")
    auth.add_basic(GstRtspServer.RTSPAuth.make_basic(user, password), token)
    server.set_auth(auth)
    permissions = GstRtspServer.RTSPPermissions()
    permissions.add_permission_for_role("user", "media.factory.access", True)
    permissions.add_permission_for_role("user", "media.factory.construct", True)
    factory.set_permissions(permissions)


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--path", default="/live")
    p.add_argument("--file", required=True)
    p.add_argument("--auth", help="USER:PASSWORD required from clients (Basic)")
    args = p.parse_args()
    Gst.init(None)
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(str(args.port))
    factory = GstRtspServer.RTSPMediaFactory()
    factory.set_launch(f'( filesrc location="{args.file}" ! qtdemux ! queue ! h264parse config-interval=-1 '
                       f'! rtph264pay name=pay0 pt=96 config-interval=1 )')
    factory.set_shared(True)
    if args.auth:
        _require_auth(server, factory, *args.auth.split(":", 1))
    server.get_mount_points().add_factory(args.path, factory)
    if server.attach(None) == 0:
        print("cannot bind", file=sys.stderr)
        return 1
    loop = GLib.MainLoop()
    GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, signal.SIGTERM, loop.quit)
    GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, signal.SIGINT, loop.quit)
    print("READY", flush=True)
    loop.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
