"""each request's stars on its own row, in the covering index of a month's figures

The desk's month figures count ratings per unit; reading the stars from ``ratings`` cost a lookup per request
filed in the month. ``requests.rating_stars`` holds a copy of ``ratings.stars`` (kept in step by
``storage.models``), backfilled here, and ``ix_requests_filed_figures`` covers it.

Revision ID: 0019_request_rating_stars
Revises: 0018f_desk_figures
Create Date: 2026-12-01 20:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0019_request_rating_stars'
down_revision = '0018f_desk_figures'
branch_labels = None
depends_on = None

FIGURES_COLUMNS = ['created_at', 'grid_id', 'status', 'resolved_at', 'due_at']


def upgrade() -> None:
    op.add_column('requests', sa.Column('rating_stars', sa.Integer(), nullable=True))
    op.execute(
        "UPDATE requests SET rating_stars = (SELECT ratings.stars FROM ratings WHERE ratings.request_id = requests.id)"
        " WHERE id IN (SELECT request_id FROM ratings WHERE stars IS NOT NULL)"
    )
    op.drop_index('ix_requests_filed_figures', table_name='requests')
    op.create_index('ix_requests_filed_figures', 'requests', [*FIGURES_COLUMNS, 'rating_stars'])


def downgrade() -> None:
    op.drop_index('ix_requests_filed_figures', table_name='requests')
    op.create_index('ix_requests_filed_figures', 'requests', FIGURES_COLUMNS)
    with op.batch_alter_table('requests') as batch:
        batch.drop_column('rating_stars')
