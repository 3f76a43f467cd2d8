"""Exit codes shared by ``edge-fer``, ``edge-fer-train`` and ``edge-fer-convert`` (README "Exit codes").

One set of numbers for the three programs (0-3 and 130 mean the same in each;
4-7 only occur in ``edge-fer``), the ``--help`` table and the one-line error
printer. This module imports nothing of the project, so any layer may use it:
the daemon (:mod:`edge.daemon`) returns these codes itself, the front ends map
exceptions to them.
"""

import sys

OK = 0
INTERNAL = 1          # unexpected error (a bug): one line, traceback with --log-level DEBUG
USAGE = 2             # bad command line or config (every problem listed with its key path), missing optional package
MODEL = 3             # model file missing or invalid
INPUT_MISSING = 4     # --video/--image path does not exist
INPUT_UNREADABLE = 5  # not a video/image, corrupt/truncated container, zero frames
NO_SOURCE = 6         # daemon: no source could be opened at start
OUTPUT = 7            # output folder or file not writable
INTERRUPTED = 130     # Ctrl-C (SIGINT) during --video / --image

#: (code, meaning) rows shown in ``edge-fer --help`` and the README.
TABLE: tuple[tuple[int, str], ...] = (
    (OK, "success (also: a clip without faces, a truncated clip: a warning says so)"),
    (INTERNAL, "unexpected internal error (one line; --log-level DEBUG shows the traceback)"),
    (USAGE, "bad command line or configuration (each problem with its key path); "
            "an optional package or program missing (the message gives the install command)"),
    (MODEL, "model file missing or invalid"),
    (INPUT_MISSING, "--video / --image path does not exist"),
    (INPUT_UNREADABLE, "not a video/image, corrupt container, zero decodable frames, no readable image"),
    (NO_SOURCE, "daemon: no source delivered frames within read_timeout_s at start"),
    (OUTPUT, "outputs not writable"),
    (INTERRUPTED, "interrupted (Ctrl-C)"),
)


def table_text(rows: tuple[tuple[int, str], ...] = TABLE) -> str:
    """The exit-code table as plain text for a ``--help`` epilog (one ``code  meaning`` line each).

    Args:
        rows: (code, meaning) rows; ``edge-fer-train`` and ``edge-fer-convert`` pass their own meanings
            of :data:`OK`, :data:`INTERNAL`, :data:`USAGE`, :data:`MODEL` and :data:`INTERRUPTED`.
    """
    return "exit codes:\n" + "\n".join(f"  {code:>3}  {meaning}" for code, meaning in rows)


def fail(code: int, message: str, prog: str = "edge-fer") -> int:
    """Print ``prog: message`` on stderr (one line) and return ``code``.

    Args:
        code: The exit code to return (one of this module's constants).
        message: One line, no traceback.
        prog: The program name that prefixes the line (``edge-fer-train``, ``edge-fer-convert``).
    """
    print(f"{prog}: {message}", file=sys.stderr)
    return code
