"""Slowing down password guessing: per username and per client address, in memory.

After ``max_failures`` failed logins within ``window_s`` for one key (a username, or a
client address, which gets a larger allowance because many people may share one), the
key is locked out for ``base_delay_s * 2 ** (failures - max_failures)`` seconds (capped at
``max_delay_s``). While locked, ``POST /auth/token`` answers 429 with ``Retry-After``
without checking the password, so guessing gains nothing. A successful login clears its
username's failures (not the address's: one valid account must not reset an attacker's
address).

Per API process: several API replicas each allow their own count (documented; a shared
store would be a database write per failed login).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field


@dataclass
class _Failures:
    times: list[float] = field(default_factory=list)
    locked_until: float = 0.0


@dataclass
class LoginThrottle:
    """``retry_after(keys)`` before checking a password; ``failed(keys)`` /
    ``succeeded(key)`` after. Keys are ``("user", name)`` or ``("ip", address)``."""

    max_failures: int = 5
    max_failures_per_address: int = 20
    window_s: float = 300.0
    base_delay_s: float = 1.0
    max_delay_s: float = 300.0
    clock: Callable[[], float] = time.monotonic
    max_keys: int = 100_000
    _state: dict[tuple[str, str], _Failures] = field(default_factory=dict)

    def _limit(self, key: tuple[str, str]) -> int:
        return self.max_failures_per_address if key[0] == "ip" else self.max_failures

    def retry_after(self, keys: Iterable[tuple[str, str]]) -> int | None:
        """Seconds until a login may be tried again, or None when it may be tried now."""
        now = self.clock()
        wait = max(
            (self._state[k].locked_until - now for k in keys if k in self._state), default=0.0
        )
        return math.ceil(wait) if wait > 0 else None

    def failed(self, keys: Iterable[tuple[str, str]]) -> None:
        now = self.clock()
        if len(self._state) >= self.max_keys:
            self._forget_idle(now)
        for key in keys:
            entry = self._state.setdefault(key, _Failures())
            entry.times = [t for t in entry.times if now - t < self.window_s]
            entry.times.append(now)
            over = len(entry.times) - self._limit(key)
            if over >= 0:
                delay = min(self.base_delay_s * 2**over, self.max_delay_s)
                entry.locked_until = now + delay

    def succeeded(self, key: tuple[str, str]) -> None:
        self._state.pop(key, None)

    def _forget_idle(self, now: float) -> None:
        """Drop keys with no recent failure and no lock (bounds memory under a spray)."""
        for key in [
            k
            for k, e in self._state.items()
            if e.locked_until <= now and all(now - t >= self.window_s for t in e.times)
        ]:
            del self._state[key]
