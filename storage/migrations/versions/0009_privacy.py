"""privacy notice: remember when each person was shown it, so it is shown once

Revision ID: 0009_privacy
Revises: 0006_overdue_check
Create Date: 2026-12-01 12:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import storage.models

revision = '0009_privacy'
down_revision = '0008_wechat_nonces'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Empty for everyone already known: they are shown the notice with their next message.
    with op.batch_alter_table('people') as batch:
        batch.add_column(sa.Column('privacy_notice_at', storage.models.UTCDateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('people') as batch:
        batch.drop_column('privacy_notice_at')
