"""Conversation throughput of two versions of gridbot measured in one run, in turns: this working tree against a
git revision (``main`` by default), so a change is judged by the ratio of rates measured minutes apart on the
same machine rather than by numbers from different hours.

    python -m bench.versions [--against main] [--runs 3] [--conversations 300] [--lanes 50] [--postgres URL]

The revision is exported with ``git archive`` to a scratch directory; each turn runs that tree's conversation
benchmark in a fresh interpreter started in it (so it imports that tree's packages), in the order ABBAAB. Each
turn reports the gridbot rate, the echo bot's measured in the same turn, and the CPU time of the whole process
per step: on a shared machine the rate follows the neighbours' load, the CPU per step much less.
"""

from __future__ import annotations

import argparse
import io
import os
import re
import statistics
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent.parent
RATES = re.compile(r"gridbot ([\d,]+) steps/s, echo ([\d,]+) updates/s")
CPU = re.compile(r"cpu ([\d.]+) ms/step")
# Run inside the tree measured: its own conversation benchmark, with the CPU time of the whole process (event
# loop and database thread) taken around the measured gridbot run, the second scripted run of four.
DRIVER = """
import asyncio, sys, time
from bench import conversation
spans = []
scripted = conversation.run_scripted
async def timed(under_test, scripts):
    started = time.process_time()
    stats = await scripted(under_test, scripts)
    spans.append((time.process_time() - started) / max(stats.steps, 1))
    return stats
conversation.run_scripted = timed
sizes = (int(sys.argv[1]), int(sys.argv[2]))
postgres = sys.argv[3] if len(sys.argv) > 3 else ""
measured = conversation.measure_postgres(postgres, *sizes) if postgres else conversation.measure_sqlite(*sizes)
result = asyncio.run(measured)
print(conversation.describe(result))
print(f"cpu {spans[1] * 1000:.3f} ms/step")
"""


@dataclass(frozen=True)
class Turn:
    tree: str
    rate: float
    echo: float
    cpu_ms: float  # CPU time of the process per step handled
    load: float


def export(revision: str, directory: Path) -> Path:
    archive = subprocess.run(["git", "archive", revision], cwd=HERE, capture_output=True, check=True).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(directory, filter="data")
    return directory


def turn(name: str, tree: Path, conversations: int, lanes: int, postgres: str) -> Turn:
    load = os.getloadavg()[0]
    done = subprocess.run(
        [sys.executable, "-c", DRIVER, str(conversations), str(lanes), postgres],
        cwd=tree, capture_output=True, text=True, check=True, timeout=900,
    )
    found, cpu = RATES.search(done.stdout), CPU.search(done.stdout)
    if found is None or cpu is None:
        raise RuntimeError(f"no rates in the output of {name}: {done.stdout}{done.stderr}")
    rate, echo = (float(value.replace(",", "")) for value in found.groups())
    return Turn(name, rate, echo, float(cpu.group(1)), load)


def describe(turns: list[Turn], against: str) -> str:
    lines = [f"{'turn':<5} {'tree':<12} {'steps/s':>8} {'echo/s':>8} {'ratio':>6} {'CPU ms/step':>11} {'load':>5}"]
    for index, measured in enumerate(turns, start=1):
        lines.append(f"{index:<5} {measured.tree:<12} {measured.rate:>8,.0f} {measured.echo:>8,.0f} "
                     f"{measured.rate / measured.echo:>6.3f} {measured.cpu_ms:>11.2f} {measured.load:>5.1f}")
    trees = ("this tree", against)
    rate = {name: statistics.median(t.rate for t in turns if t.tree == name) for name in trees}
    cpu = {name: statistics.median(t.cpu_ms for t in turns if t.tree == name) for name in trees}
    lines.append(f"median steps/s: this tree {rate['this tree']:,.0f}, {against} {rate[against]:,.0f}, "
                 f"x{rate['this tree'] / rate[against]:.2f}")
    lines.append(f"median CPU ms/step: this tree {cpu['this tree']:.2f}, {against} {cpu[against]:.2f}, "
                 f"x{cpu[against] / cpu['this tree']:.2f} fewer")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--against", default="main", help="the git revision to compare with")
    parser.add_argument("--runs", type=int, default=3, help="turns of each version")
    parser.add_argument("--conversations", type=int, default=300)
    parser.add_argument("--lanes", type=int, default=50)
    parser.add_argument("--postgres", default="", help="a PostgreSQL server URL to measure on instead of SQLite")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="gridbot-versions-") as directory:
        other = export(args.against, Path(directory))
        turns: list[Turn] = []
        pair = [(args.against, other), ("this tree", HERE)]
        for run in range(args.runs):
            # ABBAAB...: neither version always runs first, on a machine whose load drifts.
            for name, tree in pair if run % 2 == 0 else pair[::-1]:
                turns.append(turn(name, tree, args.conversations, args.lanes, args.postgres))
                print(f"{name}: {turns[-1].rate:,.0f} steps/s", flush=True)
    print(describe(turns, args.against))


if __name__ == "__main__":
    main()
