"""request events indexed by kind and time, for the bulletin's resolutions per worker in a month

Revision ID: 0015r_events_by_kind
Revises: 0015r_campaigns
Create Date: 2026-12-02 13:00:00
"""

from __future__ import annotations

from alembic import op

revision = '0015r_events_by_kind'
down_revision = '0015r_campaigns'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index('ix_request_events_kind_at', 'request_events', ['kind', 'at'])


def downgrade() -> None:
    op.drop_index('ix_request_events_kind_at', table_name='request_events')
