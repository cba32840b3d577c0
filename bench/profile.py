"""Where a filing step's time goes: the database thread's work per unit of work, and a cProfile of it.

    python -m bench.profile [--conversations 100]

The event loop mostly waits during the conversation benchmark; the single SQLite thread is the busy one, so
this profiles that thread only (every ``Database.run`` is timed and profiled inside the thread).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import pstats
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from sqlalchemy.orm import Session

from bench import conversation
from storage.database import Database

T = TypeVar("T")


@contextmanager
def _profiled_database_thread(profiler: cProfile.Profile, hops: dict[str, list[float]]) -> Iterator[None]:
    original = Database._run_in_thread

    def run_in_thread(self: Database, unit_of_work: Callable[[Session], T]) -> T:
        target: Any = getattr(unit_of_work, "func", unit_of_work)
        name = getattr(target, "__qualname__", type(target).__name__)
        started = time.perf_counter()
        profiler.enable()
        try:
            return original(self, unit_of_work)
        finally:
            profiler.disable()
            hops[name].append(time.perf_counter() - started)

    Database._run_in_thread = run_in_thread  # type: ignore[method-assign]
    try:
        yield
    finally:
        Database._run_in_thread = original  # type: ignore[method-assign]


def profile(conversations: int = 100, lanes: int = 20, top: int = 28) -> str:
    profiler = cProfile.Profile()
    hops: dict[str, list[float]] = defaultdict(list)
    with _profiled_database_thread(profiler, hops):
        result = asyncio.run(conversation.measure_sqlite(conversations, lanes))
    steps = result.gridbot.steps
    lines = [
        f"{conversation.describe(result)} (under cProfile: roughly half speed)",
        "",
        "database hops during the run (inside the database thread, profiler on):",
        *(
            f"  {name:<32} {len(times):6} hops {sum(times):7.2f} s  {sum(times) / len(times) * 1000:6.2f} ms/hop"
            for name, times in sorted(hops.items(), key=lambda item: -sum(item[1]))
            if len(times) > 2
        ),
        f"  ({steps} measured steps plus warm-up)",
        "",
        "cProfile of the database thread, by cumulative time:",
    ]
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    stats.sort_stats("cumulative").print_stats(top)
    site = "/site-packages/"
    for line in out.getvalue().splitlines():
        if line.strip() and (line.lstrip()[:1].isdigit() or "ncalls" in line):
            cut = line.find(site)
            lines.append(line if cut < 0 else line[:cut].rsplit(" ", 1)[0] + " " + line[cut + len(site):])
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--conversations", type=int, default=100)
    args = parser.parse_args()
    print(profile(args.conversations))


if __name__ == "__main__":
    main()
