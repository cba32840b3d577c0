"""wechat: per-follower window and choices, shared access token

Revision ID: 0004_wechat
Revises: 0003_scheduler
Create Date: 2026-11-30 09:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import storage.models

revision = '0004_wechat'
down_revision = '0003_scheduler'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('wechat_chats',
    sa.Column('openid', sa.String(length=64), nullable=False),
    sa.Column('last_inbound_at', storage.models.UTCDateTime(), nullable=True),
    sa.Column('sent_in_window', sa.Integer(), nullable=False),
    sa.Column('choices', sa.JSON(), nullable=False),
    sa.Column('choices_message_id', sa.BigInteger(), nullable=True),
    sa.Column('message_seq', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('openid')
    )
    op.create_table('wechat_access_tokens',
    sa.Column('app_id', sa.String(length=64), nullable=False),
    sa.Column('token', sa.String(length=600), nullable=False),
    sa.Column('expires_at', storage.models.UTCDateTime(), nullable=False),
    sa.Column('lease_until', storage.models.UTCDateTime(), nullable=True),
    sa.PrimaryKeyConstraint('app_id')
    )


def downgrade() -> None:
    op.drop_table('wechat_access_tokens')
    op.drop_table('wechat_chats')
