"""Latency at a steady offered load: residents send filing steps at ``rate`` steps per second (open loop, one
step every 1/rate seconds from whichever resident is not waiting for an answer), through the real aiogram
engine with a null network; measured from the update being handed out by getUpdates to the step's answer
message being handed to the network.

Measuring starts once the first residents have each filed one whole conversation, so every kind of step has
been handled at least once: a step's first run in a process pays one-time costs (the confirm step's first
working-day calendar, about 0.1 s; SQLAlchemy compiling each statement once) that are not the steady state.

    python -m bench.latency [--rate 100] [--seconds 15]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from collections import deque
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from bench.harness import (
    MESSAGE_METHODS,
    Conversation,
    Poller,
    SentCall,
    deployment,
    gridbot_under_test,
    percentile,
    sqlite_url,
)

TARGET_P99 = 0.025
RESIDENTS_AT_ONCE = 40


@dataclass(frozen=True)
class LatencyResult:
    rate: float
    seconds: float
    steps: int
    missed: int  # ticks when every resident was still waiting for an answer
    latencies: list[float]

    @property
    def p50(self) -> float:
        return percentile(self.latencies, 0.50)

    @property
    def p99(self) -> float:
        return percentile(self.latencies, 0.99)


async def measure(database_url: str, rate: float, seconds: float) -> LatencyResult:
    warmup_seconds = 2 * RESIDENTS_AT_ONCE * Conversation.STEPS / rate  # at most; see ``warmed``
    total = int(rate * (seconds + warmup_seconds) / Conversation.STEPS) + 2 * RESIDENTS_AT_ONCE
    async with deployment(database_url, total) as deployed:
        under_test = gridbot_under_test(deployed.service)
        poller = Poller(under_test)
        polling = asyncio.create_task(poller.run())
        fresh = iter(deployed.residents)
        idle: deque[tuple[Conversation, int]] = deque(
            (Conversation(next(fresh), under_test.session), 0) for _ in range(RESIDENTS_AT_ONCE)
        )
        awaiting: dict[int, float] = {}
        latencies: list[float] = []
        measuring = False
        finished = 0

        def on_call(call: SentCall) -> None:
            if call.method in MESSAGE_METHODS and call.chat_id in awaiting:
                sent = awaiting.pop(call.chat_id)
                if measuring:
                    latencies.append(call.at - sent)

        under_test.session.listeners.append(on_call)

        def handled(conversation: Conversation, step: int, _done: asyncio.Future[None]) -> None:
            nonlocal finished
            awaiting.pop(conversation.user_id, None)
            if step + 1 < Conversation.STEPS:
                idle.append((conversation, step + 1))
            else:
                finished += 1
                idle.append((Conversation(next(fresh), under_test.session), 0))

        def warmed(now: float) -> bool:
            return finished >= RESIDENTS_AT_ONCE or now >= started + warmup_seconds

        interval, steps, missed = 1.0 / rate, 0, 0
        started = time.perf_counter()
        next_at, end = started, started + warmup_seconds + seconds
        while (now := time.perf_counter()) < end:
            if not measuring and warmed(now):
                measuring, end = True, now + seconds
            if idle:
                conversation, step = idle.popleft()
                awaiting[conversation.user_id] = time.perf_counter()
                future = poller.send(conversation.step(step))
                future.add_done_callback(partial(handled, conversation, step))
                steps += measuring
            else:
                missed += measuring
            next_at += interval
            await asyncio.sleep(max(0.0, next_at - time.perf_counter()))
        await under_test.drain()
        poller.stop()
        await polling
    return LatencyResult(rate, seconds, steps, missed, latencies)


async def measure_sqlite(rate: float, seconds: float) -> LatencyResult:
    with tempfile.TemporaryDirectory(prefix="gridbot-bench-") as directory:
        return await measure(sqlite_url(Path(directory), "latency.db"), rate, seconds)


def describe(result: LatencyResult) -> str:
    return (
        f"SQLite at {result.rate:.0f} steps/s offered: p50 {result.p50 * 1000:.1f} ms, p99 {result.p99 * 1000:.1f} ms "
        f"(target p99 <= {TARGET_P99 * 1000:.0f} ms); {result.steps} steps in {result.seconds:.0f} s, "
        f"{result.missed} ticks with every resident still waiting"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=float, default=100.0)
    parser.add_argument("--seconds", type=float, default=15.0)
    args = parser.parse_args()
    print(describe(asyncio.run(measure_sqlite(args.rate, args.seconds))))


if __name__ == "__main__":
    main()
