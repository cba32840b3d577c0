"""the weekly three-party meeting: representatives and their invitations, schedules, meetings, decisions

Revision ID: 0015v_meetings
Revises: 0015r_events_by_kind
Create Date: 2026-12-01 16:20:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '0015v_meetings'
down_revision = '0015r_events_by_kind'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'meeting_members',
        sa.Column('id', sa.Integer(), primary_key=True),
        sa.Column('community_id', sa.Integer(), sa.ForeignKey('communities.id'), nullable=False),
        sa.Column('party', sa.String(16), nullable=False),
        sa.Column('token', sa.String(60), nullable=False, unique=True),
        sa.Column('person_id', sa.Integer(), sa.ForeignKey('people.id', ondelete='CASCADE'), nullable=True),
        sa.Column('invited_by_id', sa.Integer(), sa.ForeignKey('people.id'), nullable=False),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.Column('joined_at', sa.DateTime(), nullable=True),
    )
    op.create_index('ix_meeting_members_community_id', 'meeting_members', ['community_id'])
    op.create_index('ix_meeting_members_person_id', 'meeting_members', ['person_id'])
    op.create_table(
        'meeting_schedules',
        sa.Column('community_id', sa.Integer(), sa.ForeignKey('communities.id'), primary_key=True),
        sa.Column('weekday', sa.Integer(), nullable=False),
        sa.Column('at', sa.String(5), nullable=False),
    )
    op.create_table(
        'meetings',
        sa.Column('id', sa.Integer(), primary_key=True),
        sa.Column('community_id', sa.Integer(), sa.ForeignKey('communities.id'), nullable=False),
        sa.Column('held_at', sa.DateTime(), nullable=False),
        sa.Column('agenda_sent_at', sa.DateTime(), nullable=False),
        sa.Column('attended', sa.JSON(), nullable=False),
        sa.Column('recorded_at', sa.DateTime(), nullable=True),
        sa.UniqueConstraint('community_id', 'held_at'),
    )
    op.create_table(
        'meeting_decisions',
        sa.Column('id', sa.Integer(), primary_key=True),
        sa.Column('meeting_id', sa.Integer(), sa.ForeignKey('meetings.id', ondelete='CASCADE'), nullable=False),
        sa.Column('request_id', sa.Integer(), sa.ForeignKey('requests.id', ondelete='SET NULL'), nullable=True),
        sa.Column('text', sa.Text(), nullable=False),
        sa.Column('owner', sa.String(16), nullable=False),
        sa.Column('deadline', sa.DateTime(), nullable=False),
        sa.Column('remind_at', sa.DateTime(), nullable=True),
        sa.Column('outcome', sa.Text(), nullable=True),
        sa.Column('done_at', sa.DateTime(), nullable=True),
        sa.Column('created_by_id', sa.Integer(), sa.ForeignKey('people.id'), nullable=False),
        sa.Column('created_at', sa.DateTime(), nullable=False),
    )
    op.create_index('ix_meeting_decisions_meeting_id', 'meeting_decisions', ['meeting_id'])
    op.create_index('ix_meeting_decisions_remind_at', 'meeting_decisions', ['remind_at'])


def downgrade() -> None:
    op.drop_table('meeting_decisions')
    op.drop_table('meetings')
    op.drop_table('meeting_schedules')
    op.drop_table('meeting_members')
