"""Log lines that repeat at most once per interval (per key)."""

from __future__ import annotations

import logging
import threading
import time


class RateLimitedLog:
    """Emit a log record for a key at most once every ``every_s`` seconds.

    Attributes:
        every_s: Minimum seconds between two records of the same key (60 s:
            the issue's "at most once a minute").
    """

    def __init__(self, logger: logging.Logger, every_s: float = 60.0) -> None:
        """Wrap ``logger``."""
        self.logger, self.every_s = logger, every_s
        self._last: dict[str, float] = {}
        self._lock = threading.Lock()

    def log(self, key: str, level: int, msg: str, *args, **kwargs) -> bool:
        """Log ``msg % args`` at ``level`` unless ``key`` was logged less than ``every_s`` ago.

        Returns:
            True if the record was emitted.
        """
        now = time.monotonic()
        with self._lock:
            last = self._last.get(key)
            if last is not None and now - last < self.every_s:
                return False
            self._last[key] = now
        self.logger.log(level, msg, *args, **kwargs)
        return True

    def seen(self, key: str) -> bool:
        """True if ``key`` was logged at least once (and not :meth:`reset`)."""
        with self._lock:
            return key in self._last

    def reset(self, key: str) -> None:
        """Forget ``key``: its next record is emitted at once."""
        with self._lock:
            self._last.pop(key, None)
