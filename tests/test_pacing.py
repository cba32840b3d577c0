"""Every outgoing call keeps to one global rate: residents writing at once, alone and during a broadcast, all get
their answers from a simulator that answers 429 to any call above its strict limit, and it never has to."""

from __future__ import annotations

from bench.pacing import measure


async def test_answers_to_a_crowd_keep_to_the_rate_during_a_broadcast(database_url: str) -> None:
    # A low rate: its slots lie far enough apart that a loaded test machine's delays cannot bunch them.
    result = await measure(database_url, residents=12, broadcast_to=30, rate=5)

    assert result.refusals == 0
    for wave in result.waves:
        assert len(wave.latencies) == 12
        assert wave.undelivered == 0
