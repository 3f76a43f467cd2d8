"""``edge`` never imports TensorFlow (it must run with the runtime dependencies alone)."""

import subprocess
import sys

from conftest import ROOT


def test_edge_runtime_does_not_import_tensorflow(d19, tmp_path):
    code = (
        "import sys\n"
        "import edge, edge.cli.main, edge.daemon.service, edge.pipeline.video, edge.pipeline.images\n"
        "from edge.cli.main import main\n"
        f"rc = main(['--video', {str(d19)!r}, '--out', {str(tmp_path)!r}, '--no-progress'])\n"
        "assert rc == 0, rc\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras', 'training', 'convert'))\n"
        "assert not bad, bad\n"
    )
    res = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr[-2000:]


def _imports(path) -> set[str]:
    """Top-level module names a source file imports (any nesting level, ``from x import`` included)."""
    import ast

    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


# (package folder, module prefixes it must never import): imports run down the layers only
LAYERS = [
    ("edge", ("training", "convert", "tensorflow", "keras")),
    ("edge/pipeline", ("edge.cli", "edge.daemon")),
    ("edge/daemon", ("edge.cli",)),
    ("training", ("convert",)),
]


def test_no_import_runs_up_the_layers():
    bad = []
    for folder, forbidden in LAYERS:
        for path in sorted((ROOT / folder).rglob("*.py")):
            for name in _imports(path):
                if any(name == f or name.startswith(f + ".") for f in forbidden):
                    bad.append(f"{path.relative_to(ROOT)} imports {name}")
    assert not bad, "\n".join(bad)
