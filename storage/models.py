"""The database schema: organisation, people, staff roles, requests, and the update inbox / message outbox.

Models are shaped for the request lifecycle; the rules that move requests live in ``bot.core``.
"""

from __future__ import annotations

import enum
from datetime import UTC, date, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    DateTime,
    Enum,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
    event,
    false,
    update,
)
from sqlalchemy.engine import Connection
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, object_session, relationship
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.orm.util import identity_key
from sqlalchemy.types import TypeDecorator

from storage.search_keys import building_search_key

CODE_LENGTH = 60


class UTCDateTime(TypeDecorator[datetime]):
    """Timestamps are stored as naive UTC and always come back timezone-aware (SQLite keeps no zone)."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the database; use bot.core.clock")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        return value.replace(tzinfo=UTC) if value is not None else None


class Base(DeclarativeBase):
    type_annotation_map: ClassVar[dict[Any, Any]] = {datetime: UTCDateTime(), dict[str, Any]: JSON}


def table_of(model: type[Base]) -> Table:
    """A mapped class's table, for SQLAlchemy Core statements on it (typed as the ``Table`` it always is here)."""
    table = model.__table__
    assert isinstance(table, Table)
    return table


class Level(enum.StrEnum):
    """A level of the organisation (see ``bot.core.units``); requests are held from GRID up to DISTRICT."""

    GRID = "grid"
    COMMUNITY = "community"
    STREET = "street"
    DISTRICT = "district"
    # Buildings are addressed by broadcasts and posters; no request or staff role is held at this level.
    BUILDING = "building"
    # A place in a grid that is nobody's home (a market, a back alley, a square): requests may be about it.
    PLACE = "place"
    # A functional department (housing, urban management, market supervision, the power company) of a street
    # or of the whole district, beside the tree: the street or district hands (分流) requests to it.
    DEPARTMENT = "department"


class Role(enum.StrEnum):
    WORKER = "worker"
    COMMUNITY = "community"
    STREET = "street"
    DISTRICT = "district"
    DEPARTMENT = "department"


class RequestStatus(enum.StrEnum):
    NEW = "new"  # waiting for someone at the holding level to accept it
    ACCEPTED = "accepted"
    RESOLVED = "resolved"  # handler says done; waiting for the resident's answer
    CLOSED = "closed"  # resident confirmed (or did not answer in time)
    WITHDRAWN = "withdrawn"


OPEN_STATUSES = (RequestStatus.NEW, RequestStatus.ACCEPTED)


class Street(Base):
    __tablename__ = "streets"
    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(CODE_LENGTH), unique=True)
    name: Mapped[str] = mapped_column(String(200))


class Community(Base):
    __tablename__ = "communities"
    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(CODE_LENGTH), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    street_id: Mapped[int] = mapped_column(ForeignKey("streets.id"), index=True)
    street: Mapped[Street] = relationship(lazy="joined")


class Grid(Base):
    __tablename__ = "grids"
    __table_args__ = (Index("ix_grids_bounds", "min_latitude", "min_longitude"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(CODE_LENGTH), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    community_id: Mapped[int] = mapped_column(ForeignKey("communities.id"), index=True)
    community: Mapped[Community] = relationship(lazy="joined")
    # Visits each of the grid's workers is to make per day; the deployment's default when unset.
    visit_target: Mapped[int | None] = mapped_column(Integer)
    # The grid's boundary, a GeoJSON Polygon or MultiPolygon in WGS-84, if the import gave one, and the box
    # around it: a location is matched against the few boxes holding it, read through the index. Not loaded
    # with the grid (``deferred``): every update loads its sender's grid, and a boundary of a few hundred points
    # took longer to parse than the rest of the sender together.
    boundary: Mapped[dict[str, Any] | None] = mapped_column(JSON, deferred=True)
    min_latitude: Mapped[float | None] = mapped_column(Float)
    max_latitude: Mapped[float | None] = mapped_column(Float)
    min_longitude: Mapped[float | None] = mapped_column(Float)
    max_longitude: Mapped[float | None] = mapped_column(Float)


class Building(Base):
    __tablename__ = "buildings"
    # A location message looks up the buildings in a small box around it.
    __table_args__ = (Index("ix_buildings_location", "latitude", "longitude"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(CODE_LENGTH), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    address: Mapped[str] = mapped_column(String(400), default="")
    latitude: Mapped[float | None] = mapped_column(Float)
    longitude: Mapped[float | None] = mapped_column(Float)
    grid_id: Mapped[int] = mapped_column(ForeignKey("grids.id"), index=True)
    # A building removed from the organisation keeps its history but takes no new residents or requests.
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    # What residents find it by (``storage.search_keys``), kept in step with code, name and address on every write.
    search_key: Mapped[str] = mapped_column(Text, default="", server_default="")
    grid: Mapped[Grid] = relationship(lazy="joined")


@event.listens_for(Building, "before_insert")
@event.listens_for(Building, "before_update")
def _fill_search_key(_mapper: object, _connection: object, building: Building) -> None:
    building.search_key = building_search_key(building.code, building.name, building.address or "")


class Place(Base):
    """A place of a grid that is nobody's home: a market, an alley, a square, a park (coordinates in WGS-84)."""

    __tablename__ = "places"
    __table_args__ = (Index("ix_places_location", "latitude", "longitude"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(CODE_LENGTH), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(40), default="")
    address: Mapped[str] = mapped_column(String(400), default="")
    latitude: Mapped[float | None] = mapped_column(Float)
    longitude: Mapped[float | None] = mapped_column(Float)
    grid_id: Mapped[int] = mapped_column(ForeignKey("grids.id"), index=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    grid: Mapped[Grid] = relationship(lazy="joined")


class Department(Base):
    """A functional department that does work the street or district hands it; ``street_id`` empty for one
    that serves the whole district."""

    __tablename__ = "departments"
    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(CODE_LENGTH), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    street_id: Mapped[int | None] = mapped_column(ForeignKey("streets.id"), index=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class Person(Base):
    """Anyone who talks to the bot, on any channel; staff are people with roles."""

    __tablename__ = "people"
    __table_args__ = (UniqueConstraint("channel", "external_id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    channel: Mapped[str] = mapped_column(String(20))
    external_id: Mapped[str] = mapped_column(String(64))
    # Where messages to this person go (on Telegram the private chat id equals the user id).
    chat_id: Mapped[str] = mapped_column(String(64))
    display_name: Mapped[str] = mapped_column(String(200), default="")
    locale: Mapped[str | None] = mapped_column(String(16))
    phone: Mapped[str | None] = mapped_column(String(32))
    building_id: Mapped[int | None] = mapped_column(ForeignKey("buildings.id"), index=True)
    # The person blocked the bot: stop sending until they write again.
    unreachable: Mapped[bool] = mapped_column(Boolean, default=False)
    # The conversation step the person is in and what they entered so far (survives restarts).
    state: Mapped[str | None] = mapped_column(String(64))
    state_data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime]
    # When the person was shown the privacy notice; empty until their first message is handled.
    privacy_notice_at: Mapped[datetime | None]
    # Added by staff before writing to the bot, which cannot message them yet: their messages are held.
    awaiting_first_message: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    building: Mapped[Building | None] = relationship(lazy="joined")
    roles: Mapped[list[StaffRole]] = relationship(back_populates="person", lazy="selectin")


class StaffRole(Base):
    __tablename__ = "staff_roles"
    __table_args__ = (UniqueConstraint("person_id", "role", "unit_id"), Index("ix_staff_unit", "role", "unit_id"))
    id: Mapped[int] = mapped_column(primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id", ondelete="CASCADE"))
    role: Mapped[Role] = mapped_column(Enum(Role, native_enum=False, length=16))
    # grids.id for workers, communities.id / streets.id for those roles, 0 for the district.
    unit_id: Mapped[int] = mapped_column(Integer, default=0)
    person: Mapped[Person] = relationship(back_populates="roles")


class Category(Base):
    __tablename__ = "categories"
    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(CODE_LENGTH), unique=True)
    # Names per locale, e.g. {"zh_CN": "飞线充电", "en": "Dangling wires"}.
    names: Mapped[dict[str, Any]] = mapped_column(JSON)
    due_days: Mapped[int] = mapped_column(Integer, default=7)
    # A new request nobody accepts reminds its holders after this long, and goes up a level after that long.
    remind_after_hours: Mapped[int] = mapped_column(Integer, default=24, server_default="24")
    escalate_after_hours: Mapped[int] = mapped_column(Integer, default=48, server_default="48")
    sort_order: Mapped[int] = mapped_column(Integer, default=0)
    active: Mapped[bool] = mapped_column(Boolean, default=True)

    def name(self, locale: str) -> str:
        return category_name(self.names, self.code, locale)


def category_name(names: dict[str, Any], code: str, locale: str) -> str:
    """A category's name in ``locale``, else in Chinese, else in any language it has, else its code."""
    return str(names.get(locale) or names.get("zh_CN") or next(iter(names.values()), code))


class CalendarDay(Base):
    """A day the district's calendar file sets: a working day or a day off, over the official schedule."""

    __tablename__ = "calendar_days"
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    working: Mapped[bool] = mapped_column(Boolean)
    note: Mapped[str] = mapped_column(String(100), default="")


class Request(Base):
    __tablename__ = "requests"
    __table_args__ = (
        Index("ix_requests_holder", "level", "unit_id", "status"),
        Index("ix_requests_duplicates", "building_id", "category_id", "status", "created_at"),
        # The scheduler's scans: each due column is read as a range within one status.
        Index("ix_requests_remind", "status", "remind_at"),
        Index("ix_requests_escalate", "status", "escalate_at"),
        Index("ix_requests_overdue", "status", "due_at"),
        Index("ix_requests_overdue_check", "status", "overdue_check_at"),
        Index("ix_requests_resolved", "status", "resolved_at"),
        # The desk's figures (bot.core.desk_figures) read these without touching the rows: what stands open per
        # grid, and a month's requests with every column its counts need.
        Index("ix_requests_open_by_grid", "status", "grid_id", "due_at"),
        Index("ix_requests_filed_figures", "created_at", "grid_id", "status", "resolved_at", "due_at", "rating_stars"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    resident_id: Mapped[int] = mapped_column(ForeignKey("people.id"), index=True)
    # Where the problem is: a building or a place (or neither, a location only), and the grid it is routed to.
    building_id: Mapped[int | None] = mapped_column(ForeignKey("buildings.id"))
    place_id: Mapped[int | None] = mapped_column(ForeignKey("places.id"), index=True)
    grid_id: Mapped[int] = mapped_column(ForeignKey("grids.id"), index=True)
    category_id: Mapped[int] = mapped_column(ForeignKey("categories.id"))
    description: Mapped[str] = mapped_column(Text)
    latitude: Mapped[float | None] = mapped_column(Float)
    longitude: Mapped[float | None] = mapped_column(Float)
    hide_identity: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[RequestStatus] = mapped_column(Enum(RequestStatus, native_enum=False, length=16))
    # The holding unit: its level and its id in that level's table (0 for the district).
    level: Mapped[Level] = mapped_column(Enum(Level, native_enum=False, length=16))
    unit_id: Mapped[int] = mapped_column(Integer)
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("people.id"))
    created_at: Mapped[datetime] = mapped_column(index=True)
    due_at: Mapped[datetime]
    accepted_at: Mapped[datetime | None]
    resolved_at: Mapped[datetime | None]
    resolved_level: Mapped[Level | None] = mapped_column(Enum(Level, native_enum=False, length=16))
    closed_at: Mapped[datetime | None]
    supporters: Mapped[int] = mapped_column(Integer, default=0)
    # Timers of the scheduler (bot.core.scheduler). ``remind_at`` / ``escalate_at`` are set whenever the request
    # reaches a new holder and cleared once acted on; the markers say when the system last acted.
    remind_at: Mapped[datetime | None]
    escalate_at: Mapped[datetime | None]
    # The due date while the system has not yet escalated the request for being overdue, then cleared: the scan
    # reads only requests still to escalate, not every open request that went past its due date long ago.
    overdue_check_at: Mapped[datetime | None]
    overdue_escalated_at: Mapped[datetime | None]
    reasked_at: Mapped[datetime | None]
    # A lead: the grid worker who found it on their rounds and filed it (see bot.core.rounds). The resident
    # concerned, when named, is ``resident_id``; otherwise the worker stands in as the one who follows it.
    lead_by_id: Mapped[int | None] = mapped_column(ForeignKey("people.id"), index=True)
    # Closed by the worker who found it, there and then, with nobody to ask.
    on_the_spot: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # While a department holds it (分流): the street or district unit that handed it over and gets it back,
    # and the department's deadline; cleared when it comes back. ``department_check_at`` is the deadline
    # until the scheduler has reminded the department of it, then cleared, like ``overdue_check_at``.
    dispatched_level: Mapped[Level | None] = mapped_column(Enum(Level, native_enum=False, length=16))
    dispatched_unit_id: Mapped[int | None] = mapped_column(Integer)
    department_due_at: Mapped[datetime | None]
    department_check_at: Mapped[datetime | None] = mapped_column(index=True)
    # The resident's stars (``Rating.stars``), copied here whenever a rating is written so the month's figures
    # read them from the covering index instead of looking up each request's rating; see ``_copy_stars``.
    rating_stars: Mapped[int | None] = mapped_column(Integer)

    resident: Mapped[Person] = relationship(foreign_keys=[resident_id], lazy="joined")
    building: Mapped[Building | None] = relationship(lazy="joined")
    place: Mapped[Place | None] = relationship(lazy="joined")
    grid: Mapped[Grid] = relationship(lazy="joined")
    category: Mapped[Category] = relationship(lazy="joined")
    assignee: Mapped[Person | None] = relationship(foreign_keys=[assignee_id], lazy="joined")
    photos: Mapped[list[RequestPhoto]] = relationship(lazy="selectin", order_by="RequestPhoto.id")

    @property
    def code(self) -> str:
        return f"R-{self.id:06d}"


class RequestPhoto(Base):
    __tablename__ = "request_photos"
    id: Mapped[int] = mapped_column(primary_key=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("requests.id", ondelete="CASCADE"), index=True)
    file_id: Mapped[str] = mapped_column(String(200))
    # Set on photos a handler attaches to a resolution.
    from_handler: Mapped[bool] = mapped_column(Boolean, default=False)
    # The step of the timeline a handler's photo came with (a resolution, a department's work); no foreign
    # key, so a request's events and photos are deleted in any order.
    event_id: Mapped[int | None] = mapped_column(Integer)


class RequestSupporter(Base):
    """A resident who joined someone else's request ("me too") instead of filing a duplicate."""

    __tablename__ = "request_supporters"
    request_id: Mapped[int] = mapped_column(ForeignKey("requests.id", ondelete="CASCADE"), primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id"), primary_key=True)
    created_at: Mapped[datetime]


class EventKind(enum.StrEnum):
    FILED = "filed"
    ACCEPTED = "accepted"
    NOTE = "note"
    ESCALATED = "escalated"
    RETURNED = "returned"
    REASSIGNED = "reassigned"
    RESOLVED = "resolved"
    REOPENED = "reopened"
    CONFIRMED = "confirmed"
    WITHDRAWN = "withdrawn"
    CHASED = "chased"
    JOINED = "joined"  # another resident said "me too"
    REMINDED = "reminded"
    CLOSED = "closed"
    HELP_ASKED = "help_asked"  # the holder asked the community's volunteers to help
    HELPED = "helped"  # a volunteer came to help; the text is the volunteer's name
    MEETING_DECIDED = "meeting_decided"  # the three-party meeting decided on the request; the text is the decision
    MEETING_DONE = "meeting_done"  # the party owning that decision reported its outcome; the text is the outcome
    DISPATCHED = "dispatched"  # the street or district handed it to a department
    DEPARTMENT_DONE = "department_done"  # the department did the work; back to the one who dispatched it
    HANDED_BACK = "handed_back"  # the department gave it back without doing it, with a reason


class RequestEvent(Base):
    """One step on a request's timeline; ``actor_id`` is empty for the system."""

    __tablename__ = "request_events"
    # The bulletin counts each worker's resolutions of a month: events of one kind in a time range.
    __table_args__ = (Index("ix_request_events_kind_at", "kind", "at"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("requests.id", ondelete="CASCADE"), index=True)
    at: Mapped[datetime]
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("people.id"))
    kind: Mapped[EventKind] = mapped_column(Enum(EventKind, native_enum=False, length=16))
    text: Mapped[str] = mapped_column(Text, default="")
    level: Mapped[Level | None] = mapped_column(Enum(Level, native_enum=False, length=16))
    unit_id: Mapped[int | None] = mapped_column(Integer)
    # The department's deadline, on a dispatch: the request's own is cleared when it comes back, and the
    # bulletin still counts whether the department was on time.
    due_at: Mapped[datetime | None]
    actor: Mapped[Person | None] = relationship(lazy="joined")


class Rating(Base):
    __tablename__ = "ratings"
    request_id: Mapped[int] = mapped_column(ForeignKey("requests.id", ondelete="CASCADE"), primary_key=True)
    outcome: Mapped[str] = mapped_column(String(16))  # fixed | partly | not_fixed
    stars: Mapped[int | None] = mapped_column(Integer)
    comment: Mapped[str | None] = mapped_column(Text)
    at: Mapped[datetime]


def _set_stars(connection: Connection, rating: Rating, stars: int | None) -> None:
    """``Request.rating_stars`` of the rating's request set to ``stars``; the request loaded in the session, if
    any, is told too, without making it a change of its own."""
    connection.execute(update(Request).where(Request.id == rating.request_id).values(rating_stars=stars))
    session = object_session(rating)
    loaded = session.identity_map.get(identity_key(Request, rating.request_id)) if session is not None else None
    if loaded is not None:
        set_committed_value(loaded, "rating_stars", stars)


@event.listens_for(Rating, "after_insert")
@event.listens_for(Rating, "after_update")
def _copy_stars(_mapper: object, connection: Connection, rating: Rating) -> None:
    """Every rating the ORM writes copies its stars to its request (a plain ``insert(Rating)`` of many rows
    sets ``Request.rating_stars`` itself, as the import of history does)."""
    _set_stars(connection, rating, rating.stars)


@event.listens_for(Rating, "after_delete")
def _clear_stars(_mapper: object, connection: Connection, rating: Rating) -> None:
    _set_stars(connection, rating, None)


class InboxUpdate(Base):
    """Every incoming update, recorded before it is confirmed to the platform and handled from here."""

    __tablename__ = "inbox"
    channel: Mapped[str] = mapped_column(String(20), primary_key=True)
    update_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    received_at: Mapped[datetime]
    # When the update was done with: handled, or given up on (then ``dead_at`` is set too).
    handled_at: Mapped[datetime | None] = mapped_column(index=True)
    # Failed attempts at handling it; after a few it is dead: never tried again, kept with its last error.
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    error: Mapped[str | None] = mapped_column(String(500))
    dead_at: Mapped[datetime | None] = mapped_column(index=True)


class OutboxStatus(enum.StrEnum):
    PENDING = "pending"
    SENT = "sent"
    FAILED = "failed"
    # For a person who has not written to the bot yet; sent once they first write.
    HELD = "held"


class Priority(enum.IntEnum):
    """Who goes first when messages compete for the sending rate (lower first)."""

    REPLY = 0  # the answer to a person who just wrote
    NOTICE = 1  # a notice caused by someone else's message (a card to staff, news to a filer)
    SCHEDULED = 2  # written by a background job
    BROADCAST = 3


class OutboxMessage(Base):
    """A message to deliver; written in the transaction that caused it and sent after commit."""

    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_pending", "status", "not_before"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id", ondelete="CASCADE"), index=True)
    # A serialised core action (see bot.core.actions).
    action: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[OutboxStatus] = mapped_column(
        Enum(OutboxStatus, native_enum=False, length=16), default=OutboxStatus.PENDING
    )
    created_at: Mapped[datetime]
    not_before: Mapped[datetime]
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    sent_at: Mapped[datetime | None]
    # The platform's id of the sent message, for later edits.
    message_id: Mapped[int | None] = mapped_column(BigInteger)
    # The request the message shows (a card, the resident's view): edited to the new state on every change.
    request_id: Mapped[int | None] = mapped_column(ForeignKey("requests.id", ondelete="SET NULL"), index=True)
    error: Mapped[str | None] = mapped_column(String(400))
    # A process is sending this row until then (a lease, so a crashed sender's rows come back); see
    # bot.core.claims.
    claimed_until: Mapped[datetime | None]
    priority: Mapped[int] = mapped_column(Integer, default=Priority.NOTICE, server_default=str(int(Priority.NOTICE)))


class SendRateBucket(Base):
    """The send rate shared by every process on PostgreSQL: the next free sending slot, in server time.

    One row per channel, moved forward atomically by each send (see bot.core.rate); seconds since the epoch,
    so the arithmetic stays in the database's clock and no process's clock matters.
    """

    __tablename__ = "send_rate"
    channel: Mapped[str] = mapped_column(String(20), primary_key=True)
    next_slot: Mapped[float] = mapped_column(Float, default=0.0)


# --- admin tools: broadcasts, staff invites, audit log ---------------------------------------------------


class BroadcastStatus(enum.StrEnum):
    SENDING = "sending"  # confirmed; the broadcast worker delivers it (or resumes it after a restart)
    CANCELLED = "cancelled"  # the admin stopped it; ``finished_at`` is set once the worker has wound it up
    FINISHED = "finished"


class RecipientStatus(enum.StrEnum):
    PENDING = "pending"
    SENT = "sent"
    FAILED = "failed"
    BLOCKED = "blocked"


class Broadcast(Base):
    """A notice from an admin to everyone in an audience, delivered in the background."""

    __tablename__ = "broadcasts"
    id: Mapped[int] = mapped_column(primary_key=True)
    author_id: Mapped[int] = mapped_column(ForeignKey("people.id"), index=True)
    # {"scope": "c", "unit_id": 3, "who": "r"}: the level's initial, the unit's id and who (residents, staff
    # or all); see bot.core.broadcasts.Audience.
    audience: Mapped[dict[str, Any]] = mapped_column(JSON)
    text: Mapped[str] = mapped_column(Text)
    photo: Mapped[str | None] = mapped_column(String(200))
    status: Mapped[BroadcastStatus] = mapped_column(Enum(BroadcastStatus, native_enum=False, length=16), index=True)
    total: Mapped[int] = mapped_column(Integer, default=0)
    sent: Mapped[int] = mapped_column(Integer, default=0)
    failed: Mapped[int] = mapped_column(Integer, default=0)
    blocked: Mapped[int] = mapped_column(Integer, default=0)
    # The admin's message that shows progress (edited while sending) and carries the Cancel button.
    progress_message_id: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime]
    finished_at: Mapped[datetime | None]
    author: Mapped[Person] = relationship(lazy="joined")


class BroadcastRecipient(Base):
    __tablename__ = "broadcast_recipients"
    __table_args__ = (
        UniqueConstraint("broadcast_id", "person_id"),
        # The worker streams a broadcast's pending recipients in id order.
        Index("ix_broadcast_recipients_queue", "broadcast_id", "status", "id"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    broadcast_id: Mapped[int] = mapped_column(ForeignKey("broadcasts.id", ondelete="CASCADE"))
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id", ondelete="CASCADE"))
    status: Mapped[RecipientStatus] = mapped_column(
        Enum(RecipientStatus, native_enum=False, length=16), default=RecipientStatus.PENDING
    )
    attempt: Mapped[int] = mapped_column(Integer, default=0)


class StaffInvite(Base):
    """A single-use link that makes whoever opens it staff of a unit."""

    __tablename__ = "staff_invites"
    id: Mapped[int] = mapped_column(primary_key=True)
    token: Mapped[str] = mapped_column(String(CODE_LENGTH), unique=True)
    role: Mapped[Role] = mapped_column(Enum(Role, native_enum=False, length=16))
    unit_id: Mapped[int] = mapped_column(Integer)  # as StaffRole.unit_id
    created_by_id: Mapped[int] = mapped_column(ForeignKey("people.id"))
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    used_by_id: Mapped[int | None] = mapped_column(ForeignKey("people.id"))
    used_at: Mapped[datetime | None]


class TeamChat(Base):
    """A grid's or community's group chat: its new requests are posted there as cards. The group is a
    ``Person`` row of its own (its chat id as external id), so cards reach it through the outbox like any
    message and are refreshed with the request."""

    __tablename__ = "team_chats"
    __table_args__ = (UniqueConstraint("level", "unit_id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    level: Mapped[Level] = mapped_column(Enum(Level, native_enum=False, length=16))
    unit_id: Mapped[int] = mapped_column(Integer)
    chat_person_id: Mapped[int] = mapped_column(ForeignKey("people.id", ondelete="CASCADE"), unique=True)
    linked_by_id: Mapped[int | None] = mapped_column(ForeignKey("people.id", ondelete="SET NULL"))
    linked_at: Mapped[datetime]
    chat: Mapped[Person] = relationship(foreign_keys=[chat_person_id], lazy="joined")


class AuditLog(Base):
    """What admins did: broadcasts, invites, staff changes."""

    __tablename__ = "audit_log"
    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(index=True)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("people.id"))
    action: Mapped[str] = mapped_column(String(40))
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    actor: Mapped[Person | None] = relationship(lazy="joined")


class ApiKey(Base):
    """A partner app's key to file requests through Open311 (``bot.core.api_keys``): only its SHA-256 hash is
    kept. The partner files as ``person``, a person of the ``open311`` channel that is sent nothing."""

    __tablename__ = "api_keys"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), index=True)
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id"))
    created_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]
    person: Mapped[Person] = relationship(lazy="joined")


class DeskLink(Base):
    """A single-use sign-in link to the desk that a staff member asked the bot for (``/desk``); only the
    token's SHA-256 is kept, so the table cannot be used to sign in."""

    __tablename__ = "desk_links"
    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id"), index=True)
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]


class DeskSession(Base):
    """A browser signed in to the desk: the cookie's SHA-256, whose it is, and when it was last used."""

    __tablename__ = "desk_sessions"
    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id"), index=True)
    created_at: Mapped[datetime]
    last_seen_at: Mapped[datetime]
    ended_at: Mapped[datetime | None]
    person: Mapped[Person] = relationship(lazy="joined")


# --- the scheduler ----------------------------------------------------------------------------------------


class JobRun(Base):
    """A piece of a periodic job that is done, so no process does it again.

    ``subject`` names the piece (``person:12``, ``person:12:community:3``); the empty subject marks the whole
    period as finished.
    """

    __tablename__ = "job_runs"
    __table_args__ = (UniqueConstraint("job", "period", "subject"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    job: Mapped[str] = mapped_column(String(40))
    period: Mapped[str] = mapped_column(String(20))
    subject: Mapped[str] = mapped_column(String(80), default="")
    done_at: Mapped[datetime]


# --- WeChat Official Account channel ----------------------------------------------------------------------


class WeChatChat(Base):
    """What the WeChat channel remembers about one follower (OpenID) between messages and restarts.

    WeChat allows a few customer-service messages within 48 hours of the follower's last message; later
    messages must go as template messages. Chats have no buttons, so the last keyboard sent is kept here to
    turn a numbered reply back into a button press.
    """

    __tablename__ = "wechat_chats"
    openid: Mapped[str] = mapped_column(String(64), primary_key=True)
    last_inbound_at: Mapped[datetime | None]
    # Customer-service messages sent since ``last_inbound_at``.
    sent_in_window: Mapped[int] = mapped_column(Integer, default=0)
    # The numbered choices of the last keyboard: [[kind, label, value], ...]; see bot.engines.wechat.
    choices: Mapped[list[Any]] = mapped_column(JSON, default=list)
    choices_message_id: Mapped[int | None] = mapped_column(BigInteger)
    # The channel numbers the messages it sends, standing in for the message ids WeChat does not return.
    message_seq: Mapped[int] = mapped_column(BigInteger, default=0)


class WeChatAccessToken(Base):
    """The account's access token, shared by every process: fetching a new one invalidates the old one."""

    __tablename__ = "wechat_access_tokens"
    app_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    token: Mapped[str] = mapped_column(String(600), default="")
    expires_at: Mapped[datetime]
    # While set in the future, one process is fetching a new token and the others wait for it.
    lease_until: Mapped[datetime | None]


class WeChatNonce(Base):
    """A signed callback seen within the replay window, shared by every process serving the account.

    WeChat's plain-mode signature covers only the timestamp and nonce: the same signed query must not carry
    another body. A retry of the same body is allowed (deduplicated by its MsgId further on).
    """

    __tablename__ = "wechat_nonces"
    timestamp: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    nonce: Mapped[str] = mapped_column(String(64), primary_key=True)
    body_sha256: Mapped[str] = mapped_column(String(64))
    expires_at: Mapped[datetime] = mapped_column(index=True)


# --- grid workers' rounds: visits and night patrols (bot.core.rounds) ------------------------------------


class Visit(Base):
    """A grid worker's call at a building (or one household in it); staff-only, never shown to residents."""

    __tablename__ = "visits"
    __table_args__ = (
        Index("ix_visits_worker_at", "worker_id", "at"),
        Index("ix_visits_grid_at", "grid_id", "at"),
        Index("ix_visits_building_at", "building_id", "at"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    worker_id: Mapped[int] = mapped_column(ForeignKey("people.id"))
    grid_id: Mapped[int] = mapped_column(ForeignKey("grids.id"))
    building_id: Mapped[int] = mapped_column(ForeignKey("buildings.id"))
    room: Mapped[str] = mapped_column(String(40), default="")
    met: Mapped[str] = mapped_column(String(200), default="")
    note: Mapped[str] = mapped_column(Text, default="")
    photo: Mapped[str | None] = mapped_column(String(200))
    # The lead filed for an issue found on this visit.
    request_id: Mapped[int | None] = mapped_column(ForeignKey("requests.id", ondelete="SET NULL"))
    at: Mapped[datetime]
    building: Mapped[Building] = relationship(lazy="joined")


class Patrol(Base):
    """A night patrol: open until the worker ends it or the night window closes it."""

    __tablename__ = "patrols"
    __table_args__ = (Index("ix_patrols_open", "ended_at", "started_at"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    worker_id: Mapped[int] = mapped_column(ForeignKey("people.id"), index=True)
    grid_id: Mapped[int] = mapped_column(ForeignKey("grids.id"), index=True)
    started_at: Mapped[datetime]
    ended_at: Mapped[datetime | None]
    # Closed by the scheduler at the end of the night window, not by the worker.
    auto_closed: Mapped[bool] = mapped_column(Boolean, default=False)
    distance_m: Mapped[float] = mapped_column(Float, default=0.0)
    points: Mapped[list[PatrolPoint]] = relationship(lazy="selectin", order_by="PatrolPoint.at")


class PatrolPoint(Base):
    __tablename__ = "patrol_points"
    id: Mapped[int] = mapped_column(primary_key=True)
    patrol_id: Mapped[int] = mapped_column(ForeignKey("patrols.id", ondelete="CASCADE"), index=True)
    at: Mapped[datetime]
    latitude: Mapped[float] = mapped_column(Float)
    longitude: Mapped[float] = mapped_column(Float)


class PatrolFinding(Base):
    """A lead filed on the way of a patrol."""

    __tablename__ = "patrol_findings"
    patrol_id: Mapped[int] = mapped_column(ForeignKey("patrols.id", ondelete="CASCADE"), primary_key=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("requests.id", ondelete="CASCADE"), primary_key=True)


# --- the playground -----------------------------------------------------------------------------------------


class PlaygroundMarker(Base):
    """Present only in a database the playground created for itself; it runs on no other database."""

    __tablename__ = "playground_marker"
    id: Mapped[int] = mapped_column(primary_key=True)
    created_at: Mapped[datetime]
    # How far the page's clock has been moved ahead of real time; kept so a restart does not go back in time.
    clock_offset_seconds: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")


# --- party members and volunteers: check-in, posts, claims, evaluation -----------------------------------


class PartnerUnit(Base):
    """A partner unit (联建单位): an employer whose party members and staff serve in the communities."""

    __tablename__ = "partner_units"
    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(CODE_LENGTH), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(60), default="")


class VolunteerStatus(enum.StrEnum):
    PENDING = "pending"  # checked in, waiting for the community's staff
    APPROVED = "approved"
    REFUSED = "refused"


class Volunteer(Base):
    """A person checked in (报到) to a community as a volunteer; they may be a resident or staff too."""

    __tablename__ = "volunteers"
    __table_args__ = (UniqueConstraint("person_id", "community_id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id", ondelete="CASCADE"), index=True)
    community_id: Mapped[int] = mapped_column(ForeignKey("communities.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    partner_unit_id: Mapped[int | None] = mapped_column(ForeignKey("partner_units.id"))
    party_member: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[VolunteerStatus] = mapped_column(Enum(VolunteerStatus, native_enum=False, length=16))
    created_at: Mapped[datetime]
    decided_by_id: Mapped[int | None] = mapped_column(ForeignKey("people.id"))
    decided_at: Mapped[datetime | None]
    person: Mapped[Person] = relationship(foreign_keys=[person_id], lazy="joined")
    community: Mapped[Community] = relationship(lazy="joined")
    partner_unit: Mapped[PartnerUnit | None] = relationship(lazy="joined")


class VolunteerPost(Base):
    """A post (岗位) a community's staff publish for its volunteers to claim, in one or more time slots."""

    __tablename__ = "volunteer_posts"
    id: Mapped[int] = mapped_column(primary_key=True)
    community_id: Mapped[int] = mapped_column(ForeignKey("communities.id"), index=True)
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    place: Mapped[str] = mapped_column(String(400), default="")
    created_by_id: Mapped[int] = mapped_column(ForeignKey("people.id"))
    created_at: Mapped[datetime]
    # Residents who were served rate its volunteers too (``ResidentRating``).
    residents_rate: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    community: Mapped[Community] = relationship(lazy="joined")
    slots: Mapped[list[PostSlot]] = relationship(lazy="selectin", order_by="PostSlot.starts_at")


class PostSlot(Base):
    """One time slot of a post. The scheduler's due times are columns, cleared once acted on."""

    __tablename__ = "post_slots"
    __table_args__ = (
        Index("ix_post_slots_evening", "remind_evening_at"),
        Index("ix_post_slots_hour", "remind_hour_at"),
        Index("ix_post_slots_close", "close_at"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    post_id: Mapped[int] = mapped_column(ForeignKey("volunteer_posts.id", ondelete="CASCADE"), index=True)
    starts_at: Mapped[datetime]
    ends_at: Mapped[datetime]
    places: Mapped[int] = mapped_column(Integer)
    remind_evening_at: Mapped[datetime | None]
    remind_hour_at: Mapped[datetime | None]
    # The end of the slot until the scheduler has marked its no-shows and asked staff to rate.
    close_at: Mapped[datetime | None]
    post: Mapped[VolunteerPost] = relationship(back_populates="slots", lazy="joined")


class ClaimStatus(enum.StrEnum):
    CLAIMED = "claimed"
    CANCELLED = "cancelled"
    NO_SHOW = "no_show"


class SlotClaim(Base):
    """A volunteer's claim (认领) of a slot, with their check-in, check-out and the evaluation (评价)."""

    __tablename__ = "slot_claims"
    __table_args__ = (UniqueConstraint("slot_id", "volunteer_id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    slot_id: Mapped[int] = mapped_column(ForeignKey("post_slots.id", ondelete="CASCADE"), index=True)
    volunteer_id: Mapped[int] = mapped_column(ForeignKey("volunteers.id", ondelete="CASCADE"), index=True)
    status: Mapped[ClaimStatus] = mapped_column(Enum(ClaimStatus, native_enum=False, length=16))
    claimed_at: Mapped[datetime]
    cancelled_at: Mapped[datetime | None]
    checked_in_at: Mapped[datetime | None]
    checked_out_at: Mapped[datetime | None]
    latitude: Mapped[float | None] = mapped_column(Float)
    longitude: Mapped[float | None] = mapped_column(Float)
    stars: Mapped[int | None] = mapped_column(Integer)
    comment: Mapped[str | None] = mapped_column(Text)
    rated_by_id: Mapped[int | None] = mapped_column(ForeignKey("people.id"))
    rated_at: Mapped[datetime | None]
    slot: Mapped[PostSlot] = relationship(lazy="joined")
    volunteer: Mapped[Volunteer] = relationship(lazy="joined")
    resident_ratings: Mapped[list[ResidentRating]] = relationship(lazy="selectin", order_by="ResidentRating.id")


class ResidentRating(Base):
    """A resident's rating of a volunteer's service in a slot of a post residents rate: 1-5 and a comment, once."""

    __tablename__ = "resident_ratings"
    __table_args__ = (UniqueConstraint("claim_id", "person_id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    claim_id: Mapped[int] = mapped_column(ForeignKey("slot_claims.id", ondelete="CASCADE"), index=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id", ondelete="CASCADE"))
    stars: Mapped[int] = mapped_column(Integer)
    comment: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]


class MeetingParty(enum.StrEnum):
    """The three parties of the weekly meeting (三方联席会商)."""

    RESIDENTS = "residents"  # the residents' committee 居委会
    OWNERS = "owners"  # the owners' committee 业委会
    PROPERTY = "property"  # the property company 物业


class MeetingMember(Base):
    """A party's representative at a community's meeting: an invitation (``token``) until someone opens it."""

    __tablename__ = "meeting_members"
    id: Mapped[int] = mapped_column(primary_key=True)
    community_id: Mapped[int] = mapped_column(ForeignKey("communities.id"), index=True)
    party: Mapped[MeetingParty] = mapped_column(Enum(MeetingParty, native_enum=False, length=16))
    token: Mapped[str] = mapped_column(String(CODE_LENGTH), unique=True)
    person_id: Mapped[int | None] = mapped_column(ForeignKey("people.id", ondelete="CASCADE"), index=True)
    invited_by_id: Mapped[int] = mapped_column(ForeignKey("people.id"))
    created_at: Mapped[datetime]
    joined_at: Mapped[datetime | None]
    person: Mapped[Person | None] = relationship(foreign_keys=[person_id], lazy="joined")


class MeetingSchedule(Base):
    """A community's own weekday (0 Monday) and local time of the weekly meeting; the settings' default
    applies to a community without one."""

    __tablename__ = "meeting_schedules"
    community_id: Mapped[int] = mapped_column(ForeignKey("communities.id"), primary_key=True)
    weekday: Mapped[int] = mapped_column(Integer)
    at: Mapped[str] = mapped_column(String(5))  # HH:MM, local


class Meeting(Base):
    """One weekly meeting of a community: written when its agenda is sent (the unique key sends it once),
    completed by staff with who attended."""

    __tablename__ = "meetings"
    __table_args__ = (UniqueConstraint("community_id", "held_at"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    community_id: Mapped[int] = mapped_column(ForeignKey("communities.id"))
    held_at: Mapped[datetime]
    agenda_sent_at: Mapped[datetime]
    attended: Mapped[list[Any]] = mapped_column(JSON, default=list)  # the parties present
    recorded_at: Mapped[datetime | None]
    community: Mapped[Community] = relationship(lazy="joined")


class MeetingDecision(Base):
    """A decision of a meeting, about a request or standing alone, owned by one party until its outcome."""

    __tablename__ = "meeting_decisions"
    id: Mapped[int] = mapped_column(primary_key=True)
    meeting_id: Mapped[int] = mapped_column(ForeignKey("meetings.id", ondelete="CASCADE"), index=True)
    request_id: Mapped[int | None] = mapped_column(ForeignKey("requests.id", ondelete="SET NULL"))
    text: Mapped[str] = mapped_column(Text)
    owner: Mapped[MeetingParty] = mapped_column(Enum(MeetingParty, native_enum=False, length=16))
    deadline: Mapped[datetime]
    # When the owner is reminded; cleared by the scheduler when it does (as the request timers are).
    remind_at: Mapped[datetime | None] = mapped_column(index=True)
    outcome: Mapped[str | None] = mapped_column(Text)
    done_at: Mapped[datetime | None]
    created_by_id: Mapped[int] = mapped_column(ForeignKey("people.id"))
    created_at: Mapped[datetime]
    meeting: Mapped[Meeting] = relationship(lazy="joined")
    request: Mapped[Request | None] = relationship(lazy="joined")


class TargetStatus(enum.StrEnum):
    """Where one target of a focused campaign stands."""

    PENDING = "pending"
    RECTIFIED = "rectified"
    NOT_RECTIFIED = "not_rectified"


class Campaign(Base):
    """A focused campaign (重点整治) opened by community, street or district staff for their area."""

    __tablename__ = "campaigns"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    category_id: Mapped[int] = mapped_column(ForeignKey("categories.id"))
    # The area it covers: a community, a street or the district (unit 0).
    level: Mapped[Level] = mapped_column(Enum(Level, native_enum=False, length=16))
    unit_id: Mapped[int] = mapped_column(Integer)
    owner_id: Mapped[int] = mapped_column(ForeignKey("people.id"), index=True)
    # The last local day of the campaign.
    ends_on: Mapped[date]
    created_at: Mapped[datetime]
    # When the owner was sent the progress at the end (by the scheduler, once).
    final_report_at: Mapped[datetime | None]
    category: Mapped[Category] = relationship(lazy="joined")


class CampaignTarget(Base):
    """One building a campaign is to rectify, and what the grid worker recorded for it."""

    __tablename__ = "campaign_targets"
    __table_args__ = (
        UniqueConstraint("campaign_id", "building_id", name="uq_campaign_targets_building"),
        Index("ix_campaign_targets_grid", "grid_id", "status"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"), index=True)
    building_id: Mapped[int] = mapped_column(ForeignKey("buildings.id"))
    grid_id: Mapped[int] = mapped_column(ForeignKey("grids.id"))
    status: Mapped[TargetStatus] = mapped_column(Enum(TargetStatus, native_enum=False, length=16))
    note: Mapped[str] = mapped_column(Text, default="")
    photo: Mapped[str | None] = mapped_column(String(200))
    recorded_by_id: Mapped[int | None] = mapped_column(ForeignKey("people.id"))
    recorded_at: Mapped[datetime | None]
    building: Mapped[Building] = relationship(lazy="joined")
    campaign: Mapped[Campaign] = relationship(lazy="joined")
