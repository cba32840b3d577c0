"""Making work race-free when several processes share one database.

Two webhook processes may receive the same update (Telegram retried, or a load balancer replayed it), and two
outbox loops look at the same pending messages. On PostgreSQL every process is a separate writer, so:

* an update is recorded with ``INSERT ... ON CONFLICT DO NOTHING`` (a duplicate insert is not an error), and the
  handling transaction marks the inbox row handled with a conditional ``UPDATE``, which locks it: a second
  process handling the same update waits for the first to commit, then finds ``handled_at`` set and skips it;
* an outbox row is *claimed* before it is sent: ``claimed_until`` is set in the transaction that wrote it (the
  writer sends it right after commit) or by the background loop with ``FOR UPDATE SKIP LOCKED``. A claim is a
  lease: if its process dies, the row is due again once the lease has run out.

On SQLite one writer at a time serialises everything; ``FOR UPDATE`` is simply left out of the SQL there.
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import CursorResult, Executable, Insert, Table, bindparam, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from storage.models import InboxUpdate, table_of

# How long a claimed outbox row belongs to the process that claimed it. Longer than any batch takes to send
# (the sender stops using a claim at half its lease), short enough that a crash delays messages only a little.
# Read from the environment rather than Settings because the core writes claims without access to them; the
# crash tests shorten it so that messages of a killed process come back within the test.
OUTBOX_LEASE = timedelta(seconds=float(os.environ.get("GRIDBOT_OUTBOX_LEASE_SECONDS", "60")))


def insert_ignoring_duplicates(session: Session, table: Table) -> Insert:
    """``INSERT ... ON CONFLICT DO NOTHING`` in the session's dialect (both SQLite and PostgreSQL have it).

    The rows go in as the execution's parameters (``session.execute(statement, rows)``), so the statement is
    compiled once and cached rather than rebuilt around each batch of values.
    """
    if session.get_bind().dialect.name == "postgresql":
        return postgresql.insert(table).on_conflict_do_nothing()
    return sqlite.insert(table).on_conflict_do_nothing()


_INBOX = table_of(InboxUpdate)

# Built once: every update runs it, and a statement object kept caches its compiled form's key too.
_CLAIM_UNHANDLED = (
    update(_INBOX)
    .where(
        _INBOX.c.channel == bindparam("claim_channel"),
        _INBOX.c.update_id == bindparam("claim_update_id"),
        _INBOX.c.handled_at.is_(None),
    )
    .values(handled_at=bindparam("claim_now"))
)


def claim_update(session: Session, channel: str, update_id: int, now: datetime) -> bool:
    """Mark the update handled in the current transaction; False if it already was.

    One conditional ``UPDATE``: it locks the row until commit, so another process given the same update waits
    for this transaction and then, finding ``handled_at`` set, claims nothing. If the handler fails, the
    rollback takes the mark back with everything else. An update never recorded is recorded here, handled.
    """
    claim = {"claim_channel": channel, "claim_update_id": update_id, "claim_now": now}
    if _changed(session, _CLAIM_UNHANDLED, claim):
        return True
    row = {"channel": channel, "update_id": update_id, "payload": {}, "received_at": now, "handled_at": now}
    if _changed(session, insert_ignoring_duplicates(session, _INBOX), row):
        return True
    # Recorded (not handled) by another process between the two statements.
    return _changed(session, _CLAIM_UNHANDLED, claim)


def _changed(session: Session, statement: Executable, parameters: dict[str, Any]) -> bool:
    # On the session's connection (Core) rather than through ``Session.execute``: a plain table statement needs
    # none of the ORM's handling of an execution, and this runs for every update.
    return cast(CursorResult[Any], session.connection().execute(statement, parameters)).rowcount > 0


def stale_unhandled_updates(
    session: Session, channel: str, received_before: datetime, limit: int = 100
) -> list[dict[str, Any]]:
    """Payloads of updates recorded before ``received_before`` and still not handled, oldest first.

    Rows a handling transaction holds right now (``claim_update``) are skipped rather than waited for: that
    transaction is about to mark them handled. Whoever is handed the rest handles them through
    ``claim_update`` as usual, so an update found here twice is still handled once.
    """
    rows = session.scalars(
        select(InboxUpdate)
        .where(
            InboxUpdate.channel == channel,
            InboxUpdate.handled_at.is_(None),
            InboxUpdate.received_at < received_before,
        )
        .order_by(InboxUpdate.update_id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    return [row.payload for row in rows]
