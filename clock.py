"""One clock for everything that asks what time it is: issuance, CRL and OCSP dates, validation,
card expiry checks and the apps. A clock is any callable returning an aware UTC datetime;
``system_clock`` is the default, ``VirtualClock`` the one tests freeze and advance.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable

Clock = Callable[[], dt.datetime]
"""What components take: call it for "now" (aware, UTC)."""


def system_clock() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class VirtualClock:
    """A clock that is real until frozen; frozen, it moves only when told to.

    Thread-safe, so a test can advance it while a server thread answers with it.
    """

    def __init__(self, frozen_at: dt.datetime | None = None) -> None:
        self._lock = threading.Lock()
        self._frozen: dt.datetime | None = None
        if frozen_at is not None:
            self.freeze(frozen_at)

    def __call__(self) -> dt.datetime:
        with self._lock:
            return self._frozen if self._frozen is not None else system_clock()

    @property
    def frozen(self) -> bool:
        return self._frozen is not None

    def freeze(self, at: dt.datetime | None = None) -> dt.datetime:
        """Stop the clock at ``at`` (default: now)."""
        if at is not None and at.tzinfo is None:
            raise ValueError("a clock keeps aware times: give a timezone (e.g. dt.UTC)")
        with self._lock:
            self._frozen = (at or system_clock()).astimezone(dt.UTC)
            return self._frozen

    def advance(self, delta: dt.timedelta) -> dt.datetime:
        """Move a frozen clock forward (or back, with a negative delta)."""
        with self._lock:
            if self._frozen is None:
                raise RuntimeError("advance a frozen clock: call freeze() first")
            self._frozen += delta
            return self._frozen

    def unfreeze(self) -> None:
        """Back to real time."""
        with self._lock:
            self._frozen = None

    def __repr__(self) -> str:
        return f"VirtualClock({self._frozen!r})" if self._frozen else "VirtualClock()"
