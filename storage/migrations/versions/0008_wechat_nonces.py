"""wechat nonces, the playground's marker, and the buildings' location index

WeChat callbacks seen within the replay window are remembered by timestamp and nonce, shared by every process;
a database the playground created for itself says so; a location message looks buildings up by index.

Revision ID: 0008_wechat_nonces
Revises: 0006_overdue_check
Create Date: 2026-12-01 11:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import storage.models

revision = '0008_wechat_nonces'
down_revision = '0007_inbox_dead_letter'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('wechat_nonces',
    sa.Column('timestamp', sa.BigInteger(), nullable=False),
    sa.Column('nonce', sa.String(length=64), nullable=False),
    sa.Column('body_sha256', sa.String(length=64), nullable=False),
    sa.Column('expires_at', storage.models.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('timestamp', 'nonce')
    )
    op.create_index(op.f('ix_wechat_nonces_expires_at'), 'wechat_nonces', ['expires_at'], unique=False)
    op.create_table('playground_marker',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('created_at', storage.models.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_buildings_location', 'buildings', ['latitude', 'longitude'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_buildings_location', table_name='buildings')
    op.drop_table('playground_marker')
    op.drop_index(op.f('ix_wechat_nonces_expires_at'), table_name='wechat_nonces')
    op.drop_table('wechat_nonces')
