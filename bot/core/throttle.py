"""Holding back a person who sends faster than anyone types: a sliding window per person, in memory.

Each process counts on its own. With N webhook workers a flood spread over all of them gets up to N times the
limit through, which is still far below what could hurt; a shared counter would cost a write per update.
Staff are never held back: they press buttons in quick runs while working through a queue.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from bot.core.context import Context
from bot.core.messages import ButtonPress


@dataclass
class _Window:
    times: deque[float] = field(default_factory=deque)
    warned: bool = False


class Throttle:
    """At most ``limit`` updates per person within ``window`` seconds; the rest are dropped with one notice."""

    def __init__(self, limit: int = 5, window: float = 1.0, now: Callable[[], float] = time.monotonic) -> None:
        self.limit = limit
        self.window = window
        self.now = now
        self.held_back = 0
        self._windows: dict[int, _Window] = {}
        self._checks = 0

    def allows(self, person_id: int) -> tuple[bool, bool]:
        """(allowed, warn now): the first update over the limit in a burst is the one that gets the notice."""
        now = self.now()
        self._checks += 1
        if self._checks % 1000 == 0:
            self._forget_quiet(now)
        window = self._windows.setdefault(person_id, _Window())
        while window.times and window.times[0] <= now - self.window:
            window.times.popleft()
        if len(window.times) < self.limit:
            window.times.append(now)
            if len(window.times) == 1:
                window.warned = False  # a quiet spell: the next burst gets a notice again
            return True, False
        self.held_back += 1
        warn = not window.warned
        window.warned = True
        return False, warn

    def holds_back(self, ctx: Context) -> bool:
        """True when this update is dropped; the person hears about it once per burst, in their language."""
        if ctx.person.roles:
            return False
        allowed, warn = self.allows(ctx.person.id)
        if allowed:
            return False
        if warn:
            ctx.reply(ctx.t._("You are sending messages very quickly. Please wait a few seconds, then try again."))
        if isinstance(ctx.event, ButtonPress):
            ctx.answer()  # the button stops spinning even when the press is dropped
        return True

    def _forget_quiet(self, now: float) -> None:
        quiet = [key for key, w in self._windows.items() if not w.times or w.times[-1] <= now - self.window]
        for key in quiet:
            del self._windows[key]
