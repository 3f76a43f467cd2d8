"""``edge`` never imports TensorFlow (it must run with the runtime dependencies alone)."""

import subprocess
import sys

from conftest import ROOT


def test_edge_runtime_does_not_import_tensorflow(d19, tmp_path):
    code = (
        "import sys\n"
        "import edge, edge.cli.main, edge.pipeline.service, edge.pipeline.video, edge.pipeline.images\n"
        "from edge.cli.main import main\n"
        f"rc = main(['--video', {str(d19)!r}, '--out', {str(tmp_path)!r}, '--no-progress'])\n"
        "assert rc == 0, rc\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras', 'training', 'convert'))\n"
        "assert not bad, bad\n"
    )
    res = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr[-2000:]
