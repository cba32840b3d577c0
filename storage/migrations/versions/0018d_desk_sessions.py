"""the desk's single-use sign-in links and its browser sessions

Revision ID: 0018d_desk_sessions
Revises: 0018o_api_keys
Create Date: 2026-12-01 17:45:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0018d_desk_sessions'
down_revision = '0018o_api_keys'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'desk_links',
        sa.Column('id', sa.Integer(), primary_key=True),
        sa.Column('token_hash', sa.String(64), nullable=False, unique=True),
        sa.Column('person_id', sa.Integer(), sa.ForeignKey('people.id'), nullable=False),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.Column('expires_at', sa.DateTime(), nullable=False),
        sa.Column('used_at', sa.DateTime(), nullable=True),
    )
    op.create_index('ix_desk_links_person_id', 'desk_links', ['person_id'])
    op.create_table(
        'desk_sessions',
        sa.Column('id', sa.Integer(), primary_key=True),
        sa.Column('token_hash', sa.String(64), nullable=False, unique=True),
        sa.Column('person_id', sa.Integer(), sa.ForeignKey('people.id'), nullable=False),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.Column('last_seen_at', sa.DateTime(), nullable=False),
        sa.Column('ended_at', sa.DateTime(), nullable=True),
    )
    op.create_index('ix_desk_sessions_person_id', 'desk_sessions', ['person_id'])


def downgrade() -> None:
    op.drop_index('ix_desk_sessions_person_id', table_name='desk_sessions')
    op.drop_table('desk_sessions')
    op.drop_index('ix_desk_links_person_id', table_name='desk_links')
    op.drop_table('desk_links')
