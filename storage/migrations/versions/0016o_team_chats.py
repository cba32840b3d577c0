"""team_chats: a grid's or community's Telegram group, where its new requests are posted as cards

Revision ID: 0016o_team_chats
Revises: 0015o_building_search
Create Date: 2026-12-02 12:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import storage.models

revision = '0016o_team_chats'
down_revision = '0015o_building_search'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'team_chats',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('level', sa.Enum('GRID', 'COMMUNITY', 'STREET', 'DISTRICT', 'BUILDING', name='level',
                                   native_enum=False, length=16), nullable=False),
        sa.Column('unit_id', sa.Integer(), nullable=False),
        sa.Column('chat_person_id', sa.Integer(), nullable=False),
        sa.Column('linked_by_id', sa.Integer(), nullable=True),
        sa.Column('linked_at', storage.models.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(['chat_person_id'], ['people.id'], ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['linked_by_id'], ['people.id'], ondelete='SET NULL'),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('chat_person_id'),
        sa.UniqueConstraint('level', 'unit_id'),
    )


def downgrade() -> None:
    op.drop_table('team_chats')
