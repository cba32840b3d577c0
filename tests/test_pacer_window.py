"""The pacer keeps to the platform's sliding second as the platform counts it: on arrival, however unevenly the
calls travel there."""

from __future__ import annotations

import asyncio
import time

from bot.core.outbox import Pacer, RateLimiter

RATE = 10.0


async def test_calls_slow_on_their_way_do_not_bunch_with_fast_ones_at_the_platform() -> None:
    pacer = Pacer(RateLimiter(RATE))
    arrivals: list[float] = []

    async def send(number: int) -> None:
        slot = await pacer.wait(priority=0)
        # The first second's calls are held up on their way (a busy machine, a slow connection); the next
        # second's arrive at once. The platform counts each when it arrives.
        await asyncio.sleep(0.4 if number < 9 else 0.0)
        arrivals.append(time.monotonic())
        slot.sent()

    await asyncio.gather(*(send(number) for number in range(25)))

    arrivals.sort()
    most_in_a_second = max(
        sum(1 for other in arrivals if first <= other < first + 1.0) for first in arrivals
    )
    assert len(arrivals) == 25
    assert most_in_a_second <= RATE
