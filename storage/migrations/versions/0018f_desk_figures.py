"""covering indexes for the desk's figures: open requests by grid, and a month's requests by filing time

Revision ID: 0018f_desk_figures
Revises: 0018d_desk_sessions
Create Date: 2026-12-05 10:00:00
"""

from __future__ import annotations

from alembic import op

revision = '0018f_desk_figures'
down_revision = '0018d_desk_sessions'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index('ix_requests_open_by_grid', 'requests', ['status', 'grid_id', 'due_at'])
    op.create_index('ix_requests_filed_figures', 'requests',
                    ['created_at', 'grid_id', 'status', 'resolved_at', 'due_at'])


def downgrade() -> None:
    op.drop_index('ix_requests_filed_figures', table_name='requests')
    op.drop_index('ix_requests_open_by_grid', table_name='requests')
