"""outbox priorities and held messages: who goes first under the sending rate, and messages kept for staff
who have not written to the bot yet

Revision ID: 0013_outbox_priority
Revises: 0009_privacy
Create Date: 2026-12-01 12:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0013_outbox_priority'
down_revision = '0012_playground'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Rows already written keep the middle priority; everyone already known counts as having written.
    with op.batch_alter_table('outbox') as batch:
        batch.add_column(sa.Column('priority', sa.Integer(), server_default='1', nullable=False))
    with op.batch_alter_table('people') as batch:
        batch.add_column(sa.Column('awaiting_first_message', sa.Boolean(), server_default=sa.false(), nullable=False))


def downgrade() -> None:
    with op.batch_alter_table('people') as batch:
        batch.drop_column('awaiting_first_message')
    with op.batch_alter_table('outbox') as batch:
        batch.drop_column('priority')
