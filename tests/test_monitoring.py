"""/healthz, /readyz and /metrics of a running bot, polling (GRIDBOT_METRICS_LISTEN) and by webhook."""

from __future__ import annotations

import asyncio
import re
import socket
from typing import Any

import aiohttp
import pytest
from alembic.script import ScriptDirectory
from prometheus_client import generate_latest

from bot.config import Settings
from bot.monitoring import Monitor, schema_serves_this_code
from bot.service import Service, prepare_database
from bot.simulator import BotApiSimulator
from storage.database import DatabaseUnavailable
from storage.migrate import alembic_config, head_revision
from tests.e2e import TOKEN, RunningBot, eventually, running_bot
from tests.org_fixture import make_small_org

# Every family /metrics must show; a rename breaks dashboards and alerts.
METRIC_NAMES = (
    "gridbot_updates_received_total", "gridbot_updates_handled_total", "gridbot_updates_failed_total",
    "gridbot_update_handling_seconds_bucket", "gridbot_update_handling_seconds_count", "gridbot_rate_limited_total",
    "gridbot_retry_after_seconds_total", "gridbot_outbox_maybe_duplicated", "gridbot_outbox_pending",
    "gridbot_outbox_failed", "gridbot_broadcasts_sending", "gridbot_broadcast_recipients",
    "gridbot_scheduler_lag_seconds", "gridbot_database_up", "gridbot_database_unavailable_total",
    "gridbot_engine_ready",
)
SECRET = "s3cret-Token"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def sample(metrics: str, name: str) -> float:
    """The value of the sample ``name`` (with its labels, if any) in Prometheus text."""
    found = re.search(rf"^{re.escape(name)} (\S+)$", metrics, re.MULTILINE)
    assert found is not None, f"{name} is not in /metrics"
    return float(found.group(1))


async def get(base: str, path: str) -> tuple[int, str]:
    async with aiohttp.ClientSession() as http, http.get(base + path) as response:
        return response.status, await response.text()


async def talk_and_check(bot: RunningBot, simulator: BotApiSimulator, base: str) -> None:
    """A few updates (one meeting a 429), then every endpoint, then readiness with the database gone."""
    await bot.service.database.run(make_small_org)

    async def ready() -> bool:
        try:
            return (await get(base, "/readyz"))[0] == 200
        except aiohttp.ClientConnectionError:  # the engine has not opened its server yet
            return False

    await eventually(ready, timeout=10)
    assert await get(base, "/healthz") == (200, "ok")
    ann = simulator.user(2002, "Ann", language_code="en")
    simulator.inject_failure("sendMessage", status=429, retry_after=1)
    for _ in range(3):
        await ann.send_text("/help")
    await eventually(lambda: _answered(ann, 3), timeout=10)

    async def counted() -> str:
        metrics = (await get(base, "/metrics"))[1]
        return metrics if sample(metrics, "gridbot_updates_handled_total") >= 3 else ""

    metrics = await eventually(counted, timeout=10)
    for name in METRIC_NAMES:
        assert re.search(rf"^{name}[ {{]", metrics, re.MULTILINE), f"{name} is not in /metrics"
    assert sample(metrics, "gridbot_updates_received_total") >= 3
    assert sample(metrics, "gridbot_update_handling_seconds_count") >= 3
    assert 0 < sample(metrics, "gridbot_update_handling_seconds_sum") < 30
    assert sample(metrics, "gridbot_rate_limited_total") == 1
    assert sample(metrics, "gridbot_retry_after_seconds_total") == 1
    assert sample(metrics, "gridbot_database_up") == 1
    assert sample(metrics, "gridbot_engine_ready") == 1
    assert sample(metrics, "gridbot_outbox_failed") == 0
    for path in ("/healthz", "/readyz", "/metrics"):
        body = (await get(base, path))[1]
        assert SECRET not in body and TOKEN not in body and TOKEN.split(":")[1] not in body

    async def unavailable(_work: Any) -> Any:
        raise DatabaseUnavailable("the test took the database away")

    database = bot.service.database
    database.run = unavailable  # type: ignore[method-assign]
    try:
        status, body = await get(base, "/readyz")
        assert status == 503 and "database failing" in body
        assert await get(base, "/healthz") == (200, "ok")
        metrics = (await get(base, "/metrics"))[1]
        assert sample(metrics, "gridbot_database_up") == 0
        assert sample(metrics, "gridbot_database_unavailable_total") >= 2
    finally:
        del database.run  # type: ignore[method-assign]
    assert await get(base, "/readyz") == (200, "database ok\nschema ok\nengine ok\n")


async def _answered(user: Any, count: int) -> bool:
    return sum("/new" in (message.text or "") for message in user.messages) >= count


async def test_polling_bot_serves_health_and_metrics_on_metrics_listen(
    sim: tuple[BotApiSimulator, str], database_url: str, engine: str
) -> None:
    simulator, url = sim
    port = free_port()
    async with running_bot(simulator, url, database_url, engine, metrics_listen=f"127.0.0.1:{port}") as bot:
        await talk_and_check(bot, simulator, f"http://127.0.0.1:{port}")


async def test_webhook_server_serves_health_and_metrics_beside_the_hook(
    sim: tuple[BotApiSimulator, str], database_url: str, engine: str
) -> None:
    simulator, url = sim
    port = free_port()
    hook = f"http://127.0.0.1:{port}/telegram"
    async with running_bot(
        simulator, url, database_url, engine, webhook_url=hook, webhook_secret=SECRET,
        webhook_listen=f"127.0.0.1:{port}",
    ) as bot:
        await talk_and_check(bot, simulator, f"http://127.0.0.1:{port}")


def monitor_on(database_url: str) -> Monitor:
    """A monitor over the runtime a bot on ``database_url`` would have, with no engine running."""
    settings = Settings(database_url=database_url, _env_file=None)  # type: ignore[call-arg]
    return Monitor(Service.from_settings(settings).runtime({}, "bot"))


async def test_readiness_fails_on_a_database_server_that_is_not_there() -> None:
    monitor = monitor_on("postgresql+asyncpg://gridbot@127.0.0.1:1/missing")
    monitor.engine_ready = True
    try:
        assert await monitor.readiness() == {"database": False, "schema": False, "engine": True}
        await monitor.refresh()
        assert "gridbot_database_up 0.0" in generate_latest(monitor.registry).decode()
    finally:
        await monitor.runtime.database.dispose()


@pytest.mark.parametrize("ready", [False, True])
async def test_readiness_waits_for_the_engine(database_url: str, ready: bool) -> None:
    monitor = monitor_on(database_url)
    await prepare_database(monitor.runtime.database)
    monitor.engine_ready = ready
    try:
        assert await monitor.readiness() == {"database": True, "schema": True, "engine": ready}
    finally:
        await monitor.runtime.database.dispose()


async def test_wechat_alone_serves_health_and_metrics_on_metrics_listen(database_url: str) -> None:
    from bot.engines import wechat
    from bot.simulator.wechat import WeChatSimulator
    from tests.test_wechat import APP_ID, APP_SECRET, CALLBACK_TOKEN, eventually_up, wechat_settings

    simulator = WeChatSimulator(APP_ID, APP_SECRET, CALLBACK_TOKEN)
    api = await simulator.start()
    port, metrics_port = free_port(), free_port()
    settings = wechat_settings(database_url, api, f"127.0.0.1:{port}", metrics_listen=f"127.0.0.1:{metrics_port}")
    service = Service.from_settings(settings)
    await prepare_database(service.database)
    stop = asyncio.Event()
    task = asyncio.create_task(wechat.serve(service, stop))
    simulator.callback_url = f"http://127.0.0.1:{port}/wechat"
    base = f"http://127.0.0.1:{metrics_port}"
    try:
        await eventually_up(simulator)

        async def ready() -> bool:
            try:
                return await get(base, "/readyz") == (200, "database ok\nschema ok\nengine ok\n")
            except aiohttp.ClientConnectionError:
                return False

        await eventually(ready, timeout=10)
        metrics = (await get(base, "/metrics"))[1]
        assert sample(metrics, "gridbot_database_up") == 1 and sample(metrics, "gridbot_outbox_pending") == 0
    finally:
        stop.set()
        await asyncio.wait_for(task, 15)
        await simulator.stop()
        await service.database.dispose()


def test_schema_is_ready_at_the_head_or_ahead_of_it_but_not_behind() -> None:
    scripts = list(ScriptDirectory.from_config(alembic_config()).walk_revisions())
    oldest = scripts[-1].revision
    assert oldest != head_revision()
    assert schema_serves_this_code(head_revision())
    assert not schema_serves_this_code(oldest)
    assert not schema_serves_this_code(None)
    assert schema_serves_this_code("0099_from_a_newer_version")


async def test_readiness_fails_on_a_database_without_the_schema(database_url: str) -> None:
    monitor = monitor_on(database_url)
    monitor.engine_ready = True
    try:
        assert await monitor.readiness() == {"database": True, "schema": False, "engine": True}
    finally:
        await monitor.runtime.database.dispose()
