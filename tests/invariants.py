"""Checks over the whole database that must hold after any update, whatever a person sent."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.core.ladder import request_unit, unit_exists
from storage.models import (
    OPEN_STATUSES,
    InboxUpdate,
    Level,
    OutboxMessage,
    Person,
    Request,
    RequestStatus,
)


def check_invariants(session: Session) -> list[str]:
    """Every problem found, as readable lines; empty when the state is valid."""
    problems: list[str] = []
    people = set(session.scalars(select(Person.id)))
    for request in session.scalars(select(Request)):
        where = f"{request.code} ({request.status}, {request.level}:{request.unit_id})"
        if request.status in OPEN_STATUSES and not unit_exists(session, request.level, request.unit_id):
            problems.append(f"{where}: the holding unit does not exist")
        if request.level is not Level.DISTRICT and request.unit_id != request_unit(request, request.level):
            problems.append(f"{where}: held by a unit above another building")
        if request.status is RequestStatus.ACCEPTED and request.accepted_at is None:
            problems.append(f"{where}: accepted without accepted_at")
        if request.status in (RequestStatus.RESOLVED, RequestStatus.CLOSED) and request.resolved_at is None:
            problems.append(f"{where}: resolved without resolved_at")
        if request.status is RequestStatus.CLOSED and request.closed_at is None:
            problems.append(f"{where}: closed without closed_at")
        if request.status is RequestStatus.NEW and request.assignee_id is not None:
            problems.append(f"{where}: new but assigned")
        if request.resident_id not in people:
            problems.append(f"{where}: resident missing")
        if not request.description.strip():
            problems.append(f"{where}: empty description")
    for outbox_id, person_id in session.execute(select(OutboxMessage.id, OutboxMessage.person_id)):
        if person_id not in people:
            problems.append(f"outbox {outbox_id}: person {person_id} missing")
    for person in session.scalars(select(Person)):
        if person.state_data is None or not isinstance(person.state_data, dict):
            problems.append(f"person {person.id}: state_data is not an object")
    for row in session.scalars(select(InboxUpdate).where(InboxUpdate.handled_at.is_not(None))):
        if row.handled_at is not None and row.handled_at < row.received_at:
            problems.append(f"inbox {row.update_id}: handled before received")
    return problems
