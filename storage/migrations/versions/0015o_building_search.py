"""buildings.search_key: the name and address in Chinese, full pinyin and initials, and the code, for finding a
building by typing

Revision ID: 0015o_building_search
Revises: 0014r_rounds
Create Date: 2026-12-02 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from storage.search_keys import building_search_key

revision = '0015o_building_search'
down_revision = '0014r_rounds'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('buildings', sa.Column('search_key', sa.Text(), server_default='', nullable=False))
    buildings = sa.table(
        'buildings', sa.column('id', sa.Integer), sa.column('code', sa.String), sa.column('name', sa.String),
        sa.column('address', sa.String), sa.column('search_key', sa.Text),
    )
    connection = op.get_bind()
    rows = connection.execute(sa.select(buildings.c.id, buildings.c.code, buildings.c.name, buildings.c.address))
    keys = [{"row_id": row.id, "key": building_search_key(row.code, row.name, row.address or "")} for row in rows]
    if keys:
        connection.execute(
            buildings.update().where(buildings.c.id == sa.bindparam("row_id")).values(search_key=sa.bindparam("key")),
            keys,
        )


def downgrade() -> None:
    op.drop_column('buildings', 'search_key')
