"""a dispatch's deadline kept on its event (the bulletin's per-department figures), and the event a
staff member's photo came with (the department's photo shown to the resident)

Revision ID: 0018g_department_work
Revises: 0017p_departments
Create Date: 2026-12-05 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0018g_department_work'
down_revision = '0017p_departments'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('request_events') as batch:
        batch.add_column(sa.Column('due_at', sa.DateTime(), nullable=True))
    with op.batch_alter_table('request_photos') as batch:
        batch.add_column(sa.Column('event_id', sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('request_photos') as batch:
        batch.drop_column('event_id')
    with op.batch_alter_table('request_events') as batch:
        batch.drop_column('due_at')
