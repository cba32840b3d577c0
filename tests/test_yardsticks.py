"""The yardsticks gridbot is measured against really do the filing conversation they are fed: each bot's turn
checks that every conversation filed its request, and the limit handles an update recorded twice once."""

from __future__ import annotations

import sqlite3
import tempfile
from pathlib import Path

from aiogram.types import Update

from bench import yardsticks
from bench.harness import run_scripted


async def test_every_bot_files_each_conversation_of_the_recording() -> None:
    result = await yardsticks.measure(conversations=3, lanes=2, runs=2, warmup=1)
    # Each turn raises when a conversation's request is missing; two runs in alternating order.
    assert [turn.bot for turn in result.turns] == [*reversed(yardsticks.BOTS), *yardsticks.BOTS]
    assert all(turn.rate > 0 and turn.cpu_ms > 0 for turn in result.turns)


async def test_the_limit_handles_a_recorded_update_once() -> None:
    with tempfile.TemporaryDirectory() as directory:
        bench = yardsticks.Yardsticks(Path(directory), conversations=2, lanes=1, warmup=1)
        await bench.build_template()
        await bench.turn("gridbot", 0)
        recording = bench._replayed()
        path = bench.fresh_copy()
        under_test, limit = yardsticks.limit_under_test(path)
        try:
            await run_scripted(under_test, recording.scripts(warmup=False))
            payload = recording.measured[0][-1]  # a Confirm press
            step = yardsticks.step_of(Update.model_validate(payload))
            # getUpdates handing it out again: recorded before, and claimed before, so nothing is done twice.
            assert await limit.hop(yardsticks.Limit.record([(payload["update_id"], payload)])) == set()
            assert await limit.hop(limit.handle(step)) == []
        finally:
            limit.close()
        with sqlite3.connect(path) as connection:
            requests = connection.execute("SELECT count(*) FROM requests").fetchone()[0]
            unsent = connection.execute("SELECT count(*) FROM outbox WHERE status != 'SENT'").fetchone()[0]
            states = connection.execute("SELECT count(*) FROM people WHERE state IS NOT NULL").fetchone()[0]
    assert (requests, unsent, states) == (2, 0, 0)
