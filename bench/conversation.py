"""Conversation throughput: the full filing conversation, many residents at once, through the real aiogram
engine with the network replaced by a null session, against a bare aiogram echo bot fed the same updates.

    python -m bench.conversation [--conversations 600] [--lanes 50] [--postgres URL] [--profile out.txt]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bench.harness import (
    Conversation,
    Stats,
    deployment,
    echo_under_test,
    gridbot_under_test,
    postgres_url,
    run_scripted,
    sqlite_url,
)
from storage.models import Request

TARGET_RATIO = 0.5
Script = list[Callable[[], dict[str, Any]]]


@dataclass(frozen=True)
class ThroughputResult:
    database: str
    conversations: int
    lanes: int
    gridbot: Stats
    echo: Stats

    @property
    def ratio(self) -> float:
        return self.gridbot.rate / self.echo.rate


def in_lanes(conversations: list[Conversation], lanes: int, record: list[list[dict[str, Any]]]) -> list[Script]:
    """``lanes`` residents typing at once; each lane files its conversations one after another. Every update
    sent is noted per lane so the echo bot can be fed exactly the same ones."""
    scripts: list[Script] = [[] for _ in range(lanes)]
    for index, conversation in enumerate(conversations):
        lane = index % lanes
        for step in range(Conversation.STEPS):
            scripts[lane].append(_recording(conversation, step, record[lane]))
    return scripts


def _recording(conversation: Conversation, step: int, record: list[dict[str, Any]]) -> Callable[[], dict[str, Any]]:
    def make() -> dict[str, Any]:
        payload = conversation.step(step)
        record.append(payload)
        return payload

    return make


def replayed(record: list[dict[str, Any]]) -> Script:
    return [lambda payload=payload: payload for payload in record]  # type: ignore[misc]


async def measure(database_url: str, conversations: int, lanes: int, warmup: int = 20) -> ThroughputResult:
    async with deployment(database_url, warmup + conversations) as deployed:
        under_test = gridbot_under_test(deployed.service)
        people = [Conversation(user_id, under_test.session) for user_id in deployed.residents]
        throwaway: list[list[dict[str, Any]]] = [[] for _ in range(lanes)]
        await run_scripted(under_test, in_lanes(people[:warmup], min(lanes, warmup), throwaway))
        record: list[list[dict[str, Any]]] = [[] for _ in range(lanes)]
        gridbot = await run_scripted(under_test, in_lanes(people[warmup:], lanes, record))
        filed = await deployed.service.database.run(count_requests)
        # A bot that quickly answers "sorry, something went wrong" would make a worthless benchmark.
        assert filed == warmup + conversations, f"{filed} requests filed by {warmup + conversations} residents"
    echo = echo_under_test()
    await run_scripted(echo, [replayed(lane[: Conversation.STEPS * 2]) for lane in record])
    echo_stats = await run_scripted(echo, [replayed(lane) for lane in record])
    name = "PostgreSQL" if database_url.startswith("postgresql") else "SQLite"
    return ThroughputResult(name, conversations, lanes, gridbot, echo_stats)


def count_requests(session: Session) -> int:
    return session.scalar(select(func.count(Request.id))) or 0


async def measure_sqlite(conversations: int, lanes: int) -> ThroughputResult:
    with tempfile.TemporaryDirectory(prefix="gridbot-bench-") as directory:
        return await measure(sqlite_url(Path(directory), "conversation.db"), conversations, lanes)


async def measure_postgres(server_url: str, conversations: int, lanes: int) -> ThroughputResult:
    async with postgres_url(server_url) as url:
        return await measure(url, conversations, lanes)


def describe(result: ThroughputResult) -> str:
    return (
        f"{result.database}: gridbot {result.gridbot.rate:,.0f} steps/s, echo {result.echo.rate:,.0f} updates/s, "
        f"ratio {result.ratio:.2f} (target >= {TARGET_RATIO}); {result.conversations} conversations, "
        f"{result.lanes} residents at once"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--conversations", type=int, default=600)
    parser.add_argument("--lanes", type=int, default=50)
    parser.add_argument("--postgres", help="a PostgreSQL server URL (postgresql+asyncpg://...) to measure too")
    parser.add_argument("--profile", help="write a pyinstrument profile of the SQLite run to this file")
    args = parser.parse_args()
    if args.profile:
        from pyinstrument import Profiler

        profiler = Profiler(async_mode="disabled")
        profiler.start()
    result = asyncio.run(measure_sqlite(args.conversations, args.lanes))
    if args.profile:
        profiler.stop()
        Path(args.profile).write_text(profiler.output_text(unicode=True, show_all=False))
    print(describe(result))
    if args.postgres:
        print(describe(asyncio.run(measure_postgres(args.postgres, args.conversations, args.lanes))))


if __name__ == "__main__":
    main()
