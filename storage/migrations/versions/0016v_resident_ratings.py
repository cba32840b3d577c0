"""residents rate a volunteer's service: a post's flag and one rating per resident and service

Revision ID: 0016v_resident_ratings
Revises: 0015v_meetings
Create Date: 2026-12-01 15:20:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '0016v_resident_ratings'
down_revision = '0015v_meetings'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('volunteer_posts') as batch:
        batch.add_column(sa.Column('residents_rate', sa.Boolean(), nullable=False, server_default=sa.false()))
    op.create_table(
        'resident_ratings',
        sa.Column('id', sa.Integer(), primary_key=True),
        sa.Column('claim_id', sa.Integer(), sa.ForeignKey('slot_claims.id', ondelete='CASCADE'), nullable=False),
        sa.Column('person_id', sa.Integer(), sa.ForeignKey('people.id', ondelete='CASCADE'), nullable=False),
        sa.Column('stars', sa.Integer(), nullable=False),
        sa.Column('comment', sa.Text(), nullable=True),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.UniqueConstraint('claim_id', 'person_id'),
    )
    op.create_index('ix_resident_ratings_claim_id', 'resident_ratings', ['claim_id'])


def downgrade() -> None:
    op.drop_table('resident_ratings')
    with op.batch_alter_table('volunteer_posts') as batch:
        batch.drop_column('residents_rate')
