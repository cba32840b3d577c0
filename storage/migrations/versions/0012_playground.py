"""playground: keep how far its clock was moved, so a restart does not go back in time

Revision ID: 0012_playground
Revises: 0009_privacy
Create Date: 2026-12-01 12:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0012_playground'
down_revision = '0010_request_messages'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('playground_marker') as batch:
        batch.add_column(sa.Column('clock_offset_seconds', sa.BigInteger(), server_default='0', nullable=False))


def downgrade() -> None:
    with op.batch_alter_table('playground_marker') as batch:
        batch.drop_column('clock_offset_seconds')
