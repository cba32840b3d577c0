"""``python -m bench.postgres``: what it prints is what it measured, and every conversation filed its request."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from bench.postgres import (
    SQLITE,
    TWO,
    Result,
    Share,
    Sizes,
    Turn,
    describe,
    measure,
    one_process,
    postgres_server_cpu,
    setups,
)

SIZES = Sizes(conversations=6, lanes=4, warmup=2)
RATIOS = re.compile(r"^(PostgreSQL / SQLite|two processes / one): ([\d,.]+) / ([\d,.]+) = ([\d.]+)", re.M)


def _turn(setup: str, rates: list[float], cpu: float, server_cpu: float | None = None) -> Turn:
    """A turn whose processes each handled 100 updates at ``rate``, one after another, and spent ``cpu``."""
    shares, started = [], 0.0
    for rate in rates:
        shares.append(Share(100, started, started + 100 / rate, cpu))
        started += 100 / rate
    return Turn(setup, shares, filed=10, residents=10, load=1.0, server_cpu=server_cpu)


def _ratios(printed: str) -> dict[str, tuple[float, float, float]]:
    return {
        name: (float(top.replace(",", "")), float(bottom.replace(",", "")), float(ratio))
        for name, top, bottom, ratio in RATIOS.findall(printed)
    }


def test_the_ratios_are_of_the_median_rates_and_the_wall_time_spans_every_process() -> None:
    turns = [
        _turn(SQLITE, [200.0], 0.4), _turn(SQLITE, [100.0], 0.4), _turn(SQLITE, [300.0], 0.4),
        _turn(one_process(20), [150.0], 0.8), _turn(one_process(20), [50.0], 0.8), _turn(one_process(20), [160.0], 0.8),
        # Two processes of 100 updates each that ran one after the other: 200 updates over both spans.
        _turn(TWO, [200.0, 200.0], 0.8), _turn(TWO, [100.0, 100.0], 0.8), _turn(TWO, [400.0, 400.0], 0.8),
    ]
    result = Result(turns, pool=20)

    assert turns[6].rate == pytest.approx(200.0)
    assert turns[6].cpu_ms == pytest.approx(8.0)  # 1.6 s of CPU over 200 updates
    assert result.of_sqlite == pytest.approx(150.0 / 200.0)
    assert result.two_of_one == pytest.approx(200.0 / 150.0)
    printed = describe(result)
    assert _ratios(printed) == {
        "PostgreSQL / SQLite": (150.0, 200.0, 0.75),
        "two processes / one": (200.0, 150.0, 1.333),
    }
    assert "(target >= 0.8: not met)" in printed
    assert "(target >= 1.6: not met)" in printed
    assert "at most" not in printed  # no server CPU known, no ceiling


def test_the_ceiling_of_two_processes_is_what_the_cores_give_at_one_process_cpu_per_update() -> None:
    # One process: 100 updates at 150/s, 0.4 s of its CPU (4 ms/update) and 0.2 s of the server's (2 ms/update).
    turns = [
        _turn(SQLITE, [200.0], 0.4),
        _turn(one_process(20), [150.0], 0.4, server_cpu=0.2),
        _turn(TWO, [100.0, 100.0], 0.6, server_cpu=0.5),
    ]
    result = Result(turns, pool=20)

    assert turns[1].server_cpu_ms == pytest.approx(2.0)
    # 2 cores / 6 ms per update = 333.3 updates/s, 2.22 x the one process's 150/s.
    assert result.two_ceiling(cores=2) == pytest.approx(2000 / 6 / 150)
    printed = describe(result, cores=2)
    assert "two processes / one can be at most 2.22 on 2 cores" in printed
    assert "server 2.00 ms" in printed


def test_the_server_cpu_is_summed_over_the_postgres_processes_of_this_machine(tmp_path: Path) -> None:
    ticks = os.sysconf("SC_CLK_TCK")

    def process(pid: int, name: str, utime: int, stime: int, children: int = 0) -> None:
        (tmp_path / str(pid)).mkdir()
        (tmp_path / str(pid) / "comm").write_text(f"{name}\n")
        fields = ["S", *["0"] * 10, str(utime), str(stime), str(children), "0", *["0"] * 30]
        (tmp_path / str(pid) / "stat").write_text(f"{pid} ({name}: a) b) {' '.join(fields)}\n")

    (tmp_path / "self").mkdir()
    assert postgres_server_cpu(tmp_path) is None
    process(10, "postgres", utime=3 * ticks, stime=ticks, children=2 * ticks)  # the postmaster
    process(11, "postgres", utime=ticks, stime=0)
    process(12, "python3", utime=50 * ticks, stime=0)
    assert postgres_server_cpu(tmp_path) == pytest.approx(7.0)


def test_the_extra_pool_sizes_are_turns_of_one_process_each() -> None:
    assert [setup for setup, _processes, _pool in setups(20, [5, 20, 50])] == [
        SQLITE, one_process(20), one_process(5), one_process(50), TWO,
    ]
    assert [processes for _setup, processes, _pool in setups(20, [])] == [1, 1, 2]


@pytest.mark.skipif(not os.environ.get("GRIDBOT_TEST_POSTGRES"), reason="the command measures PostgreSQL")
async def test_a_small_run_files_every_request_and_prints_what_it_measured() -> None:
    server = os.environ["GRIDBOT_TEST_POSTGRES"]
    result = await measure(server, SIZES, runs=1, pool=3, also_pools=(2,))

    assert [turn.setup for turn in result.turns] == [SQLITE, one_process(3), one_process(2), TWO]
    for turn in result.turns:
        # The server of the tests runs on this machine, and each PostgreSQL turn kept it busy.
        assert (turn.server_cpu is None) == (turn.setup == SQLITE)
        assert turn.server_cpu is None or turn.server_cpu > 0
        # Both processes of the two-process turn warm up on residents of their own.
        assert turn.residents == SIZES.conversations + len(turn.shares) * SIZES.warmup
        assert turn.filed == turn.residents
        assert turn.updates == SIZES.conversations * 7
    assert len(result.turns[-1].shares) == 2
    printed = describe(result)
    for name, (top, bottom, ratio) in _ratios(printed).items():
        assert ratio == pytest.approx(top / bottom, rel=0.005, abs=0.001), name
    assert set(_ratios(printed)) == {"PostgreSQL / SQLite", "two processes / one"}
    assert f"{result.of_sqlite:.3f}" in printed
    assert f"{result.two_of_one:.3f}" in printed
