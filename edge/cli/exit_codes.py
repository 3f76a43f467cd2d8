"""Documented exit codes of ``edge-fer`` (README "Exit codes"), and the one-line error printer."""

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
    """The exit-code table as plain text for a ``--help`` epilog (one ``code  meaning`` line each)."""
    return "exit codes:\n" + "\n".join(f"  {code:>3}  {meaning}" for code, meaning in rows)


def fail(code: int, message: str, prog: str = "edge-fer") -> int:
    """Print ``prog: message`` on stderr (one line) and return ``code``."""
    print(f"{prog}: {message}", file=sys.stderr)
    return code
