"""Database access: one unit of work per call, committed once.

Use cases are plain synchronous SQLAlchemy code taking a ``Session``. ``Database.run`` executes a whole unit of
work in one hop:

* on SQLite, in a single dedicated database thread with the standard ``sqlite3`` driver, so an update costs
  one round trip between the event loop and the database instead of one per statement;
* on other databases (PostgreSQL through asyncpg), through ``AsyncSession.run_sync``, which runs the same
  synchronous code on the event loop and awaits the driver underneath.

The application always names an async URL (``sqlite+aiosqlite://`` or ``postgresql+asyncpg://``); the async
engine also serves migrations and ad-hoc async queries.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from sqlalchemy import create_engine, event
from sqlalchemy.engine import URL, Engine, make_url
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlalchemy.orm import Session, sessionmaker

T = TypeVar("T")
log = logging.getLogger(__name__)


class DatabaseUnavailable(Exception):
    """The database could not be reached or stayed locked; the unit of work was rolled back."""


def is_sqlite(url: str | URL) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def _set_sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.close()


# PostgreSQL error classes that mean "not now" rather than "wrong": connection problems (08), a lock not
# granted within lock_timeout, a deadlock or serialisation failure, a cancelled statement, the server shutting
# down or starting up. Retrying the same unit of work later can succeed. A unique violation (23505) outside a
# handler's savepoint is another process inserting the same row at the same moment (a new person writing to two
# workers at once); the retry finds the winner's row.
_TRANSIENT_SQLSTATES = ("08", "55P03", "40P01", "40001", "57014", "57P01", "57P02", "57P03", "53300", "23505")

# How long a PostgreSQL statement waits for a row or table lock before giving up; the person then hears "try
# again in a moment" instead of waiting behind a stuck transaction.
POSTGRES_LOCK_TIMEOUT = "5s"


def _connection_lost(error: Exception) -> bool:
    if isinstance(error, (OSError, ConnectionError)):
        return True
    if not isinstance(error, DBAPIError):
        return False
    sqlstate = getattr(error.orig, "sqlstate", None) or ""
    return error.connection_invalidated or sqlstate.startswith(_TRANSIENT_SQLSTATES)


# Connections a process keeps open to PostgreSQL. SQLAlchemy's default (5, plus 10 opened and closed again as
# load comes and goes) reconnected hundreds of times a minute under a crowd of updates; a fixed pool as large as
# the work in flight keeps them. A unit of work that finds them all busy waits for one.
DEFAULT_POOL_SIZE = 20


class Database:
    def __init__(
        self, url: str, session_info: dict[str, Any] | None = None, pool_size: int = DEFAULT_POOL_SIZE
    ) -> None:
        self.url = make_url(url)
        # Handed to every session (``Session.info``): deployment facts the core reads, such as the office hours.
        self.session_info = dict(session_info or {})
        connect_args: dict[str, Any] = {}
        pool: dict[str, Any] = {}
        if self.url.get_backend_name() == "postgresql":
            connect_args["server_settings"] = {"lock_timeout": POSTGRES_LOCK_TIMEOUT}
            pool = {"pool_size": pool_size, "max_overflow": 0}
        # No ping before each use of a pooled connection (SQLAlchemy's is three round trips on asyncpg: BEGIN, a
        # query, ROLLBACK, for every unit of work): ``run`` tries a unit of work once more on a new connection
        # when the one it was given turns out to be dead, as every pooled one is after a server restart.
        self.async_engine: AsyncEngine = create_async_engine(self.url, connect_args=connect_args, **pool)
        self._thread: ThreadPoolExecutor | None = None
        self._sync_sessions: sessionmaker[Session] | None = None
        self.sync_engine: Engine | None = None
        if is_sqlite(self.url):
            event.listen(self.async_engine.sync_engine, "connect", _set_sqlite_pragmas)
            self.sync_engine = create_engine(
                self.url.set(drivername="sqlite+pysqlite"),
                connect_args={"check_same_thread": False, "timeout": 5},
            )
            event.listen(self.sync_engine, "connect", _set_sqlite_pragmas)
            self._sync_sessions = sessionmaker(self.sync_engine, expire_on_commit=False)
            self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="gridbot-db")
        self._async_sessions = async_sessionmaker(self.async_engine, expire_on_commit=False)
        self._before_dispose: list[Callable[[], Awaitable[None]]] = []

    @property
    def dialect(self) -> str:
        return self.url.get_backend_name()

    async def run(self, unit_of_work: Callable[[Session], T]) -> T:
        """Run ``unit_of_work`` in one transaction; commit if it returns, roll back if it raises."""
        try:
            if self._thread is not None:
                loop = asyncio.get_running_loop()
                return await loop.run_in_executor(self._thread, self._run_in_thread, unit_of_work)
            return await self._run_on_event_loop(unit_of_work)
        except (OperationalError, DBAPIError, OSError, ConnectionError, PoolTimeout) as error:
            # Integrity and programming errors are bugs or bad data, not an unreachable database.
            if not isinstance(error, OperationalError | PoolTimeout) and not _connection_lost(error):
                raise
            log.warning("database unavailable: %s", error)
            raise DatabaseUnavailable(str(error)) from error

    async def _run_on_event_loop(self, unit_of_work: Callable[[Session], T]) -> T:
        for attempt in (1, 2):
            committing = False
            try:
                async with self._async_sessions(info=dict(self.session_info)) as session, session.begin():
                    result = await session.run_sync(unit_of_work)
                    committing = True
                return result
            except DBAPIError as error:
                # A connection found dead before the commit was sent: nothing of the transaction happened (the
                # server rolls it back), and the pool has now dropped every connection older than this one, so
                # one more try runs on a new connection. A connection lost while committing is left alone: the
                # commit may have happened.
                if attempt == 2 or committing or not error.connection_invalidated:
                    raise
                log.warning("database connection lost, trying again on a new one: %s", error.orig)
        raise AssertionError("unreachable")

    def _run_in_thread(self, unit_of_work: Callable[[Session], T]) -> T:
        assert self._sync_sessions is not None
        with self._sync_sessions(info=dict(self.session_info)) as session, session.begin():
            return unit_of_work(session)

    def before_dispose(self, close: Callable[[], Awaitable[None]]) -> None:
        """Call ``close`` when the database is disposed, before the pool: for connections held outside it."""
        self._before_dispose.append(close)

    async def dispose(self) -> None:
        for close in self._before_dispose:
            await close()
        self._before_dispose.clear()
        await self.async_engine.dispose()
        if self.sync_engine is not None:
            self.sync_engine.dispose()
        if self._thread is not None:
            self._thread.shutdown(wait=True)
            self._thread = None
