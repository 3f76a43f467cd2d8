"""systemd units: verify cleanly, score <= 2.0 in ``systemd-analyze security``, and the daemon runs under them.

This machine has no systemd as PID 1 (``systemd-run`` needs a running
manager), so the last test rebuilds the units' restrictions with the same
kernel mechanisms systemd uses and runs the real daemon (real RTSP server,
real mosquitto) under them: the seccomp allow-list expanded from the unit's
own ``SystemCallFilter=`` lines by ``systemd-analyze syscall-filter``, with
``SystemCallErrorNumber=EPERM``; ``MemoryDenyWriteExecute=`` as systemd 252
implements it (a second seccomp filter refusing W+X ``mmap`` and executable
``mprotect``/``pkey_mprotect``/``shmat``) plus the kernel's ``PR_SET_MDWE``;
``RestrictAddressFamilies=`` (seccomp on ``socket()``); ``NoNewPrivileges=``;
an unprivileged user in group ``video`` with an empty capability bounding set
(``DynamicUser=``, ``SupplementaryGroups=video``, ``CapabilityBoundingSet=``),
then a user namespace (``PrivateUsers=``, created after the groups are set,
as systemd does: a ``root:video 0660`` file stays readable); ``ProtectSystem=strict``
(read-only root, writable state directory); ``PrivateTmp=`` (fresh ``/tmp``
and ``/var/tmp``); ``ProtectProc=invisible``
(``/proc`` with ``hidepid=invisible``); ``UMask=0077``. Not rebuilt (they
need systemd's cgroup or namespace set-up): ``IPAddressDeny=``,
``DevicePolicy=``, ``RestrictNamespaces=``,
``ProtectKernel*=``.
"""

import grp
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from conftest import ROOT
from daemon_helpers import Subscriber, kill_daemon, wait_metric, write_config

pytestmark = pytest.mark.integration
UNITS = ["edge-fer.service", "edge-fer@.service"]
MAX_EXPOSURE = 2.0
VIDEO_GID = grp.getgrnam("video").gr_gid  # owner group of /dev/video* (44 on Debian)


def _analyze() -> str:
    exe = shutil.which("systemd-analyze")
    assert exe, "systemd-analyze missing: .ci/run installs the systemd package"
    return exe


def _unit_copy(unit: str, tmp_path: Path) -> str:
    """The unit with ExecStart pointing at this venv's edge-fer, in tmp_path; returns the instance file name."""
    edge_fer = Path(sys.executable).with_name("edge-fer")
    assert edge_fer.exists(), "pip install -e . first (console script edge-fer)"
    text = (ROOT / "systemd" / unit).read_text().replace("/opt/edge-fer/.venv/bin/edge-fer", str(edge_fer))
    name = unit.replace("@.", "@cam0.")
    (tmp_path / name).write_text(text)
    return name


@pytest.mark.parametrize("unit", UNITS)
def test_units_verify_clean(unit, tmp_path):
    name = _unit_copy(unit, tmp_path)
    res = subprocess.run([_analyze(), "verify", f"./{name}"], cwd=tmp_path, capture_output=True, text=True,
                         timeout=60)
    assert res.returncode == 0 and res.stderr.strip() == "", res.stderr


@pytest.mark.parametrize("unit", UNITS)
def test_units_security_exposure_at_most_2(unit, tmp_path):
    name = _unit_copy(unit, tmp_path)
    res = subprocess.run([_analyze(), "security", "--offline=true", "--no-pager", f"./{name}"], cwd=tmp_path,
                         capture_output=True, text=True, timeout=60)
    match = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", res.stdout)
    assert match, res.stdout[-2000:] + res.stderr
    assert float(match.group(1)) <= MAX_EXPOSURE, res.stdout


@pytest.mark.parametrize("unit", UNITS)
def test_units_have_notify_watchdog_and_hardening(unit):
    text = (ROOT / "systemd" / unit).read_text()
    for line in ("Type=notify", "WatchdogSec=", "Restart=on-failure", "DynamicUser=yes", "SupplementaryGroups=video",
                 "ProtectSystem=strict", "NoNewPrivileges=yes", "PrivateTmp=yes", "RestrictAddressFamilies=",
                 "CapabilityBoundingSet=\n", "StateDirectory=edge-fer", "DeviceAllow=char-video4linux rw",
                 "SystemCallFilter=@system-service\n", "MemoryDenyWriteExecute=yes", "ProtectProc=invisible",
                 "PrivateUsers=yes", "IPAddressDeny=any", "IPAddressAllow=localhost"):
        assert line in text, line
    assert "\nPrivateDevices=yes" not in text, "PrivateDevices=yes hides /dev/video* (cameras stop working)"


# --- the daemon under the units' restrictions -------------------------------------------------------------

def _directive(text: str, key: str) -> list[str]:
    """Values of every ``key=`` line of a unit, in order."""
    return [line.split("=", 1)[1].strip() for line in text.splitlines() if line.startswith(f"{key}=")]


def _syscall_groups() -> dict[str, list[str]]:
    """``{"@group": [members]}`` from ``systemd-analyze syscall-filter`` (members may be groups)."""
    out = subprocess.run([_analyze(), "syscall-filter", "--no-pager"], capture_output=True, text=True,
                         timeout=30).stdout
    groups: dict[str, list[str]] = {}
    current = None
    for line in out.splitlines():
        if line.startswith("@"):
            current = line.split()[0]
            groups[current] = []
        elif not line.startswith(" "):
            current = None
        elif current and not line.strip().startswith("#"):
            groups[current].append(line.strip())
    return groups


def _expand(names: list[str], groups: dict[str, list[str]]) -> set[str]:
    out: set[str] = set()
    for name in names:
        out |= _expand(groups[name], groups) if name.startswith("@") else {name}
    return out


def _allowed_syscalls(unit_text: str) -> list[str]:
    """The allow-list systemd builds from the unit's ``SystemCallFilter=`` lines (allow, then ``~`` deny)."""
    groups = _syscall_groups()
    allowed: set[str] = set()
    for value in _directive(unit_text, "SystemCallFilter"):
        if value.startswith("~"):
            allowed -= _expand(value[1:].split(), groups)
        else:
            allowed |= _expand(value.split(), groups)
    return sorted(allowed)


SANDBOX = r'''
"""Apply the unit's seccomp rules (libseccomp), MDWE and NNP, then exec CMD.

Usage: sandbox.py SYSCALLS FAMILIES -- CMD...
"""
import ctypes, os, sys

ALLOW, ERRNO = 0x7FFF0000, 0x00050000
EQ, GE, MASKED_EQ = 4, 5, 7
PROT_WRITE, PROT_EXEC, SHM_EXEC = 0x2, 0x4, 0o100000


class Cmp(ctypes.Structure):
    _fields_ = [("arg", ctypes.c_uint), ("op", ctypes.c_int), ("a", ctypes.c_uint64), ("b", ctypes.c_uint64)]


lib = ctypes.CDLL("libseccomp.so.2", use_errno=True)
lib.seccomp_init.restype = ctypes.c_void_p
lib.seccomp_init.argtypes = [ctypes.c_uint32]
lib.seccomp_rule_add_array.argtypes = [ctypes.c_void_p, ctypes.c_uint32, ctypes.c_int, ctypes.c_uint,
                                       ctypes.POINTER(Cmp)]
lib.seccomp_load.argtypes = [ctypes.c_void_p]
lib.seccomp_syscall_resolve_name.argtypes = [ctypes.c_char_p]


def nr(name):
    return lib.seccomp_syscall_resolve_name(name.encode())


def rule(ctx, action, name, *cmps):
    if nr(name) == -1:
        return
    arr = (Cmp * max(1, len(cmps)))(*cmps)
    lib.seccomp_rule_add_array(ctx, action, nr(name), len(cmps), arr)


def load(ctx):
    rc = lib.seccomp_load(ctx)
    if rc != 0:
        raise SystemExit(f"seccomp_load failed: {rc}")


syscalls, families, cmd = sys.argv[1].split(","), [int(f) for f in sys.argv[2].split(",")], sys.argv[4:]
libc = ctypes.CDLL(None, use_errno=True)
libc.prctl(38, 1, 0, 0, 0)                   # PR_SET_NO_NEW_PRIVS
if libc.prctl(65, 1, 0, 0, 0) != 0:          # PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN (Linux >= 6.3)
    print("sandbox: PR_SET_MDWE unavailable; seccomp MDWE only", file=sys.stderr)
# MemoryDenyWriteExecute=yes (systemd 252: seccomp)
ctx = lib.seccomp_init(ALLOW)
rule(ctx, ERRNO | 1, "mmap", Cmp(2, MASKED_EQ, PROT_WRITE | PROT_EXEC, PROT_WRITE | PROT_EXEC))
rule(ctx, ERRNO | 1, "mprotect", Cmp(2, MASKED_EQ, PROT_EXEC, PROT_EXEC))
rule(ctx, ERRNO | 1, "pkey_mprotect", Cmp(2, MASKED_EQ, PROT_EXEC, PROT_EXEC))
rule(ctx, ERRNO | 1, "shmat", Cmp(2, MASKED_EQ, SHM_EXEC, SHM_EXEC))
# RestrictAddressFamilies= (EAFNOSUPPORT for every other family)
top = max(families)
for fam in range(top):
    if fam not in families:
        rule(ctx, ERRNO | 97, "socket", Cmp(0, EQ, fam, 0))
rule(ctx, ERRNO | 97, "socket", Cmp(0, GE, top + 1, 0))
load(ctx)
# SystemCallFilter= + SystemCallErrorNumber=EPERM, last as in systemd (it may block what the others need)
ctx = lib.seccomp_init(ERRNO | 1)
for name in syscalls:
    rule(ctx, ALLOW, name)
load(ctx)
os.umask(0o077)                               # UMask=0077
os.execv(cmd[0], cmd)
'''

MOUNTS = r'''
set -e
mount -t proc -o hidepid=invisible proc /proc               # ProtectProc=invisible
mount -t tmpfs -o mode=755 tmpfs /mnt && mkdir /mnt/box && mount --bind "$BOX" /mnt/box
# a checkout under /tmp (the repository and ../shared beside it, the venv inside) stays reachable
if [ -n "$KEEP" ]; then mkdir /mnt/keep && mount --bind "$KEEP" /mnt/keep; fi
mount -t tmpfs -o mode=1777 tmpfs /tmp                      # PrivateTmp=yes
mount -t tmpfs -o mode=1777 tmpfs /var/tmp
mkdir -p "$BOX" && mount --bind /mnt/box "$BOX"              # the test's files, at the same path
if [ -n "$KEEP" ]; then mkdir -p "$KEEP" && mount --bind /mnt/keep "$KEEP"; fi
# the interpreter lives under /root (0700): make its tree reachable for the unprivileged user
if [ -d /root/.pyenv ]; then
  mkdir -p "$BOX/pyenv" && mount --bind /root/.pyenv "$BOX/pyenv"
  mount -t tmpfs -o mode=755 tmpfs /root && mkdir /root/.pyenv && mount --bind "$BOX/pyenv" /root/.pyenv
fi
mount --bind "$BOX/state" "$BOX/state"                       # StateDirectory= stays writable
mount -o remount,bind,ro /                                   # ProtectSystem=strict
# DynamicUser= + SupplementaryGroups=video + CapabilityBoundingSet= (empty), then PrivateUsers=yes: as systemd
# does, the groups are set before the user namespace is created
exec setpriv --reuid=65534 --regid=65534 --groups="$VIDEO_GID" --bounding-set=-all --inh-caps=-all --no-new-privs \
  unshare --user --map-current-user "$@"
'''


def _under_tmp(path: Path) -> str:
    """``path`` when it lies under /tmp or /var/tmp (hidden by the sandbox's private /tmp), else ""."""
    resolved = path.resolve()
    return str(resolved) if any(resolved.is_relative_to(t) for t in ("/tmp", "/var/tmp")) else ""


def _can_sandbox() -> str | None:
    """Why the sandbox cannot be built here, or None."""
    if os.geteuid() != 0:
        return "needs root to create a mount namespace and drop to an unprivileged user"
    for tool in ("unshare", "setpriv"):
        if not shutil.which(tool):
            return f"{tool} (util-linux) missing"
    res = subprocess.run(["unshare", "-m", "sh", "-c", "mount -t proc -o hidepid=invisible proc /proc"],
                         capture_output=True, text=True, timeout=10)
    return None if res.returncode == 0 else f"cannot mount a private /proc: {res.stderr.strip()}"


class Box:
    """A folder for one sandboxed run: ``state/`` owned by the unprivileged user, the launcher, the command line."""

    def __init__(self) -> None:
        self.path = Path(tempfile.mkdtemp(prefix="edge-fer-box-"))
        os.chmod(self.path, 0o755)
        self.state = self.path / "state"
        self.state.mkdir()
        os.chown(self.state, 65534, 65534)
        (self.path / "sandbox.py").write_text(SANDBOX)
        camera = self.path / "video0"  # stands for /dev/video0: root:video 0660
        camera.write_text("frame")
        os.chown(camera, 0, VIDEO_GID)
        os.chmod(camera, 0o660)
        self.unit = (ROOT / "systemd" / "edge-fer.service").read_text()
        assert _directive(self.unit, "SystemCallErrorNumber") == ["EPERM"]

    def command(self, *cmd: str) -> list[str]:
        """``cmd`` wrapped in the mount namespace, user switch and seccomp filters of the unit."""
        numbers = {"AF_UNIX": 1, "AF_INET": 2, "AF_INET6": 10}
        families = [numbers[f] for f in _directive(self.unit, "RestrictAddressFamilies")[0].split()]
        return ["unshare", "-m", "sh", "-c", MOUNTS, "sh", sys.executable, str(self.path / "sandbox.py"),
                ",".join(_allowed_syscalls(self.unit)), ",".join(map(str, families)), "--", *cmd]

    @property
    def env(self) -> dict[str, str]:
        return {"PATH": "/usr/bin:/bin", "BOX": str(self.path), "PYTHONUNBUFFERED": "1",
                "PYTHONDONTWRITEBYTECODE": "1", "HOME": str(self.state), "VIDEO_GID": str(VIDEO_GID),
                "KEEP": _under_tmp(ROOT.parent)}


@pytest.fixture
def box():
    reason = _can_sandbox()
    if reason:
        pytest.skip(f"sandbox unavailable on this machine: {reason}")
    b = Box()
    yield b
    shutil.rmtree(b.path, ignore_errors=True)


PROBE = r'''
import ctypes, mmap, os, socket
out = {}
try:
    mmap.mmap(-1, 4096, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
    out["wx_mmap"] = "allowed"
except OSError as e:
    out["wx_mmap"] = e.errno
try:
    socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 0)
    out["netlink"] = "allowed"
except OSError as e:
    out["netlink"] = e.errno
try:
    os.setpriority(os.PRIO_PROCESS, 0, 5)  # @resources
    out["setpriority"] = "allowed"
except OSError as e:
    out["setpriority"] = e.errno
try:
    open("/etc/edge-fer-probe", "w")
    out["write_etc"] = "allowed"
except OSError as e:
    out["write_etc"] = e.errno
out["uid"] = os.getuid()
out["camera"] = open(os.environ["BOX"] + "/video0").read()
out["pid1_visible"] = os.path.exists("/proc/1/status")
socket.socket(socket.AF_INET, socket.SOCK_STREAM).close()
print(out)
'''


def test_the_sandbox_enforces_what_the_unit_asks(box):
    """The rebuilt restrictions are real: W+X memory, netlink, @resources, writes outside the state dir all fail."""
    res = subprocess.run(box.command(sys.executable, "-c", PROBE), cwd=ROOT, env=box.env, capture_output=True,
                         text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    out = eval(res.stdout.strip().splitlines()[-1])  # noqa: S307 - our own probe's dict literal
    assert out == {"wx_mmap": 1, "netlink": 97, "setpriority": 1, "write_etc": 30, "uid": 65534,
                   "camera": "frame", "pid1_visible": False}, out


def test_daemon_runs_under_the_units_restrictions(box, mosquitto, rtsp_server):
    """Real daemon, real RTSP stream and broker, inside the unit's seccomp/MDWE/user/filesystem restrictions."""
    cfg, mport = write_config(box.path, mosquitto.port, rtsp_server.url, read_timeout_s=5.0, log_level="DEBUG")
    cfg.write_text(cfg.read_text().replace(str(box.path / "outbox.sqlite"), str(box.state / "outbox.sqlite")))
    os.chmod(cfg, 0o644)
    log = box.path / "daemon.log"
    with open(log, "w") as out:
        proc = subprocess.Popen(box.command(sys.executable, "-m", "edge.cli", "--config", str(cfg)), cwd=ROOT,
                                env=box.env, stdout=out, stderr=subprocess.STDOUT)
    sub = Subscriber(mosquitto.port)
    try:
        try:
            wait_metric(mport, 'edge_fer_frames_processed_total{source="cam0"}', lambda v: v >= 30, timeout=40)
            sub.wait_for(lambda: sub.on("edge-fer/t1/cam0/event"), timeout=30, what="an event under the sandbox")
        except AssertionError as exc:
            raise AssertionError(f"{exc}\ndaemon log:\n{log.read_text()[-3000:]}") from None
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0, log.read_text()[-3000:]
    finally:
        kill_daemon(proc)
        sub.close()
    text = log.read_text()
    assert "Traceback" not in text and "Operation not permitted" not in text, text[-3000:]
    # LiteRT's XNNPACK delegate was created and applied with W+X memory refused (no JIT needed)
    assert "XNNPACK delegate for CPU" in text and "Failed to apply" not in text, text[-3000:]
    outbox = box.state / "outbox.sqlite"
    assert outbox.exists() and outbox.stat().st_uid == 65534 and outbox.stat().st_mode & 0o077 == 0
