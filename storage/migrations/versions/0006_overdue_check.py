"""overdue check timer: the scheduler reads only requests still to escalate for being overdue

Revision ID: 0006_overdue_check
Revises: 0005_scale_out
Create Date: 2026-11-27 08:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import storage.models

revision = '0006_overdue_check'
down_revision = '0005_scale_out'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('requests') as batch:
        batch.add_column(sa.Column('overdue_check_at', storage.models.UTCDateTime(), nullable=True))
        batch.create_index('ix_requests_overdue_check', ['status', 'overdue_check_at'], unique=False)
    # Open requests not yet escalated for their current due date keep waiting for that check.
    op.execute(
        "UPDATE requests SET overdue_check_at = due_at WHERE status IN ('NEW', 'ACCEPTED') "
        "AND (overdue_escalated_at IS NULL OR overdue_escalated_at < due_at)"
    )


def downgrade() -> None:
    with op.batch_alter_table('requests') as batch:
        batch.drop_index('ix_requests_overdue_check')
        batch.drop_column('overdue_check_at')
