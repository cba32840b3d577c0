"""Helpers for the reliability tests: real bot processes, hand-made updates, and the counts report.

CI does not run pytest with ``-s``, so the counts are also appended to ``test-artifacts/reliability.txt``.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import socket
import sys
import time
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from storage.models import InboxUpdate, OutboxMessage, OutboxStatus

ROOT = Path(__file__).resolve().parent.parent
REPORT = ROOT / "test-artifacts" / "reliability.txt"
SENT_KINDS = ("SendText", "SendPhoto", "SendDocument")


def report(test: str, database_url: str, counts: dict[str, Any]) -> str:
    """Print the counts and append them to the CI artifact."""
    backend = make_url(database_url).get_backend_name()
    line = f"{time.strftime('%Y-%m-%d %H:%M:%S')} {test} [{backend}]: " + ", ".join(
        f"{name}={value}" for name, value in counts.items()
    )
    print("\n" + line)
    REPORT.parent.mkdir(parents=True, exist_ok=True)
    with REPORT.open("a", encoding="utf-8") as out:
        out.write(line + "\n")
    return line


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


async def start_bot_process(env: dict[str, str]) -> asyncio.subprocess.Process:
    """``python -m bot.cli run`` with ``GRIDBOT_*`` settings from ``env`` (and no .env file of this checkout)."""
    clean = {key: value for key, value in os.environ.items() if not key.startswith("GRIDBOT_")}
    clean.update(env)
    clean["PYTHONPATH"] = str(ROOT)
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot.cli", "run", cwd=ROOT / "tests", env=clean,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )


class UpdateMaker:
    """Telegram-shaped updates, as the platform would POST them to a webhook."""

    def __init__(self) -> None:
        self._update_ids = itertools.count(1)
        self._message_ids = itertools.count(1)

    def text(self, user_id: int, text: str, language: str = "en") -> dict[str, Any]:
        message: dict[str, Any] = {
            "message_id": next(self._message_ids),
            "date": int(time.time()),
            "chat": {"id": user_id, "type": "private", "first_name": f"U{user_id}"},
            "from": {"id": user_id, "is_bot": False, "first_name": f"U{user_id}", "language_code": language},
            "text": text,
        }
        if text.startswith("/"):
            message["entities"] = [{"type": "bot_command", "offset": 0, "length": len(text.split()[0])}]
        return {"update_id": next(self._update_ids), "message": message}


def outbox_counts(session: Session) -> dict[str, int]:
    """Outbox rows by status, plus the sent rows that put a message into a chat."""
    counts = {
        str(status): int(n)
        for status, n in session.execute(select(OutboxMessage.status, func.count()).group_by(OutboxMessage.status))
    }
    sent_messages = sum(
        1
        for (action,) in session.execute(select(OutboxMessage.action).where(OutboxMessage.status == OutboxStatus.SENT))
        if action.get("type") in SENT_KINDS
    )
    counts["sent_messages"] = sent_messages
    counts["inbox"] = int(session.scalar(select(func.count()).select_from(InboxUpdate)) or 0)
    counts["inbox_unhandled"] = int(
        session.scalar(select(func.count()).select_from(InboxUpdate).where(InboxUpdate.handled_at.is_(None))) or 0
    )
    return counts
