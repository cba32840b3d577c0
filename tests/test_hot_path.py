"""The per-update hot path: the filing steps' categories from memory follow every change made in the process,
the conversation state is written once, and a filing conversation stays within its statement budget."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import event, select
from sqlalchemy.orm import Session

from bench import statements
from bot.core.categories import filing_choices, seed_categories
from bot.core.context import Context, CoreConfig
from bot.core.messages import Text
from storage.database import Database
from storage.models import Category, Person

NOW = datetime(2026, 11, 25, 2, 0, tzinfo=UTC)


async def names(database: Database) -> list[str]:
    return await database.run(lambda session: [choice.code for choice in filing_choices(session)])


async def test_a_committed_category_change_reaches_the_next_filing_step(database: Database) -> None:
    await database.run(seed_categories)
    before = await names(database)
    assert "other" in before

    def retire_other(session: Session) -> None:
        other = session.scalars(select(Category).where(Category.code == "other")).one()
        other.active = False

    await database.run(retire_other)
    assert "other" not in await names(database)

    def add_noise(session: Session) -> None:
        session.add(Category(code="noise", names={"zh_CN": "噪音扰民"}, due_days=7, sort_order=1, active=True))

    await database.run(add_noise)
    assert (await names(database))[0] == "noise"


async def test_a_transaction_sees_its_own_change_and_a_rolled_back_one_leaves_the_copy(database: Database) -> None:
    await database.run(seed_categories)
    assert "noise" not in await names(database)

    def add_then_list(session: Session) -> list[str]:
        session.add(Category(code="noise", names={"zh_CN": "噪音扰民"}, due_days=7, sort_order=1, active=True))
        session.flush()
        return [choice.code for choice in filing_choices(session)]

    assert "noise" in await database.run(add_then_list)

    class Undone(Exception):
        pass

    def rename_and_fail(session: Session) -> None:
        clutter = session.scalars(select(Category).where(Category.code == "common_area_clutter")).one()
        clutter.names = {"zh_CN": "改掉的名字"}
        session.flush()
        raise Undone

    with pytest.raises(Undone):
        await database.run(rename_and_fail)

    def clutter_name(session: Session) -> str:
        return next(c.name("zh_CN") for c in filing_choices(session) if c.code == "common_area_clutter")

    assert await database.run(clutter_name) == "楼道杂物堆积"


async def test_the_state_set_twice_with_a_query_between_is_written_once(database: Database) -> None:
    updates: list[str] = []

    def person_updates(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        if statement.startswith("UPDATE people"):
            updates.append(statement)

    def register(session: Session) -> None:
        session.add(Person(channel="telegram", external_id="1", chat_id="1", display_name="Li", locale="zh_CN",
                           state_data={}, created_at=NOW))

    await database.run(register)

    def two_steps(session: Session) -> None:
        person = session.scalars(select(Person)).one()
        ctx = Context(session=session, person=person, event=Text("x"), now=NOW, config=CoreConfig())
        ctx.set_state("filing.category", category_id=3)
        session.scalars(select(Category)).all()  # would autoflush a changed person
        ctx.set_state("filing.description")

    engine = database.sync_engine or database.async_engine.sync_engine
    event.listen(engine, "before_cursor_execute", person_updates)
    try:
        await database.run(two_steps)
    finally:
        event.remove(engine, "before_cursor_execute", person_updates)
    assert len(updates) == 1

    def state(session: Session) -> tuple[str | None, dict[str, object]]:
        person = session.scalars(select(Person)).one()
        return person.state, person.state_data

    assert await database.run(state) == ("filing.description", {"category_id": 3})


async def test_a_filing_conversation_stays_within_its_statement_budget() -> None:
    result = await statements.measure_sqlite(2)
    spent = {step: result.steps[step].median for step in statements.STEPS}
    over = {step: count for step, count in spent.items() if count > statements.REACHED[step]}
    assert not over, f"steps over their budget {statements.REACHED}: {over}"

