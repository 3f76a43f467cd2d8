#!/usr/bin/env bash
# One-step set-up on a fresh Debian/Ubuntu machine (idempotent; re-runs are quick).
#   bash scripts/setup.sh run    runtime only: .venv with edge-fer (+ matplotlib for --plot)
#   bash scripts/setup.sh test   everything the tests need: mosquitto, ffmpeg, GStreamer RTSP
#                                server (python3-gi), systemd-analyze, TensorFlow [train] extra
set -euo pipefail
mode="${1:-run}"
cd "$(dirname "$0")/.."

apt_install() {
  local missing=()
  for pkg in "$@"; do dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  local sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
}

apt_install ffmpeg  # --annotate encodes H.264 with the ffmpeg program
if [ "$mode" = "test" ]; then
  apt_install mosquitto ffmpeg systemd chromium chromium-driver python3-gi gir1.2-gst-rtsp-server-1.0 gstreamer1.0-plugins-base \
    gstreamer1.0-plugins-good gstreamer1.0-plugins-bad gstreamer1.0-libav
fi

PY="${PYTHON:-python3}"
"$PY" -c "import ensurepip, venv" >/dev/null 2>&1 || apt_install python3-venv  # Debian ships venv without ensurepip
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
if [ "$mode" = "test" ]; then
  .venv/bin/python -m pip install -q -e ".[train,web,test]"
else
  .venv/bin/python -m pip install -q -e ".[plot]"
fi
echo "edge-fer set up ($mode): $(.venv/bin/edge-fer --version)"
