"""the district's calendar file: working days and days off over the official holiday schedule

Revision ID: 0014o_calendar
Revises: 0013_outbox_priority
Create Date: 2026-12-02 09:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0014o_calendar'
down_revision = '0013_outbox_priority'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'calendar_days',
        sa.Column('day', sa.Date(), nullable=False),
        sa.Column('working', sa.Boolean(), nullable=False),
        sa.Column('note', sa.String(length=100), nullable=False),
        sa.PrimaryKeyConstraint('day'),
    )


def downgrade() -> None:
    op.drop_table('calendar_days')
