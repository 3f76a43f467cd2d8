"""Documented exit codes of ``edge-fer`` (README "Exit codes")."""

import sys

OK = 0
INTERNAL = 1          # unexpected error (a bug): one line, traceback with --log-level DEBUG
USAGE = 2             # bad command line or config (every problem listed with its key path)
MODEL = 3             # model file missing or invalid
INPUT_MISSING = 4     # --video/--image path does not exist
INPUT_UNREADABLE = 5  # not a video/image, corrupt/truncated container, zero frames
NO_SOURCE = 6         # daemon: no source could be opened at start
OUTPUT = 7            # output folder or file not writable


def fail(code: int, message: str) -> int:
    """Print ``edge-fer: message`` on stderr (one line) and return ``code``."""
    print(f"edge-fer: {message}", file=sys.stderr)
    return code
