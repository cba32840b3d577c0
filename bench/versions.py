"""Conversation throughput of two versions of gridbot measured in one run, in turns: this working tree against a
git revision (``main`` by default), so a change is judged by the ratio of rates measured minutes apart on the
same machine rather than by numbers from different hours.

    python -m bench.versions [--against main] [--runs 3] [--conversations 300] [--lanes 50]

The revision is exported with ``git archive`` to a scratch directory; each turn runs ``python -m
bench.conversation`` in a fresh interpreter from one tree or the other (the interpreter imports the packages of
the tree it starts in), in the order ABBAAB, and each turn's gridbot rate is set against the echo bot measured in the
same turn.
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


@dataclass(frozen=True)
class Turn:
    tree: str
    rate: float
    echo: float
    load: float


def export(revision: str, directory: Path) -> Path:
    archive = subprocess.run(["git", "archive", revision], cwd=HERE, capture_output=True, check=True).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(directory, filter="data")
    return directory


def turn(name: str, tree: Path, conversations: int, lanes: int) -> Turn:
    load = os.getloadavg()[0]
    done = subprocess.run(
        [sys.executable, "-m", "bench.conversation", "--conversations", str(conversations), "--lanes", str(lanes)],
        cwd=tree, capture_output=True, text=True, check=True, timeout=900,
    )
    found = RATES.search(done.stdout)
    if found is None:
        raise RuntimeError(f"no rates in the output of {name}: {done.stdout}{done.stderr}")
    rate, echo = (float(value.replace(",", "")) for value in found.groups())
    return Turn(name, rate, echo, load)


def describe(turns: list[Turn], against: str) -> str:
    lines = [f"{'turn':<5} {'tree':<12} {'steps/s':>8} {'echo/s':>8} {'ratio':>6} {'load':>5}"]
    for index, measured in enumerate(turns, start=1):
        lines.append(f"{index:<5} {measured.tree:<12} {measured.rate:>8,.0f} {measured.echo:>8,.0f} "
                     f"{measured.rate / measured.echo:>6.3f} {measured.load:>5.1f}")
    medians = {name: statistics.median(t.rate for t in turns if t.tree == name) for name in ("this tree", against)}
    lines.append(f"median steps/s: this tree {medians['this tree']:,.0f}, {against} {medians[against]:,.0f}, "
                 f"x{medians['this tree'] / medians[against]:.2f}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--against", default="main", help="the git revision to compare with")
    parser.add_argument("--runs", type=int, default=3, help="turns of each version")
    parser.add_argument("--conversations", type=int, default=300)
    parser.add_argument("--lanes", type=int, default=50)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="gridbot-versions-") as directory:
        other = export(args.against, Path(directory))
        turns: list[Turn] = []
        pair = [(args.against, other), ("this tree", HERE)]
        for run in range(args.runs):
            # ABBAAB...: neither version always runs first, on a machine whose load drifts.
            for name, tree in pair if run % 2 == 0 else pair[::-1]:
                turns.append(turn(name, tree, args.conversations, args.lanes))
                print(f"{name}: {turns[-1].rate:,.0f} steps/s", flush=True)
    print(describe(turns, args.against))


if __name__ == "__main__":
    main()
