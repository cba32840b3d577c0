"""inbox dead letters: failed attempts at an update, its last error, and when it was given up on

Revision ID: 0007_inbox_dead_letter
Revises: 0006_overdue_check
Create Date: 2026-12-01 12:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import storage.models

revision = '0007_inbox_dead_letter'
down_revision = '0006_overdue_check'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('inbox') as batch:
        batch.add_column(sa.Column('attempts', sa.Integer(), server_default='0', nullable=False))
        batch.add_column(sa.Column('error', sa.String(length=500), nullable=True))
        batch.add_column(sa.Column('dead_at', storage.models.UTCDateTime(), nullable=True))
        batch.create_index('ix_inbox_dead_at', ['dead_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('inbox') as batch:
        batch.drop_index('ix_inbox_dead_at')
        batch.drop_column('dead_at')
        batch.drop_column('error')
        batch.drop_column('attempts')
