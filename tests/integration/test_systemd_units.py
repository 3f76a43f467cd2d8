"""systemd units: ``systemd-analyze verify`` passes with no warning, and they hold what the README promises."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT

pytestmark = pytest.mark.integration
UNITS = ["edge-fer.service", "edge-fer@.service"]


@pytest.mark.parametrize("unit", UNITS)
def test_units_verify_clean(unit, tmp_path):
    exe = shutil.which("systemd-analyze")
    assert exe, "systemd-analyze missing: .ci/run installs the systemd package"
    edge_fer = Path(sys.executable).with_name("edge-fer")
    assert edge_fer.exists(), "pip install -e . first (console script edge-fer)"
    text = (ROOT / "systemd" / unit).read_text().replace("/opt/edge-fer/.venv/bin/edge-fer", str(edge_fer))
    (tmp_path / unit).write_text(text)
    name = unit.replace("@.", "@cam0.")
    res = subprocess.run([exe, "verify", f"./{name}"], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert res.returncode == 0 and res.stderr.strip() == "", res.stderr


@pytest.mark.parametrize("unit", UNITS)
def test_units_have_notify_watchdog_and_hardening(unit):
    text = (ROOT / "systemd" / unit).read_text()
    for line in ("Type=notify", "WatchdogSec=", "Restart=on-failure", "DynamicUser=yes", "SupplementaryGroups=video",
                 "ProtectSystem=strict", "NoNewPrivileges=yes", "PrivateTmp=yes", "RestrictAddressFamilies=",
                 "CapabilityBoundingSet=\n", "StateDirectory=edge-fer"):
        assert line in text, line
