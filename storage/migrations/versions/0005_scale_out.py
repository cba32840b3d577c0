"""scale-out: outbox claims (a lease per row) and the send rate shared by all processes

Revision ID: 0005_scale_out
Revises: 0004_wechat
Create Date: 2026-12-01 09:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import storage.models

revision = '0005_scale_out'
down_revision = '0004_wechat'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('outbox') as batch:
        batch.add_column(sa.Column('claimed_until', storage.models.UTCDateTime(), nullable=True))
    op.create_table(
        'send_rate',
        sa.Column('channel', sa.String(length=20), nullable=False),
        sa.Column('next_slot', sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint('channel'),
    )


def downgrade() -> None:
    op.drop_table('send_rate')
    with op.batch_alter_table('outbox') as batch:
        batch.drop_column('claimed_until')
