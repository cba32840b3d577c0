"""party members and volunteers: partner units, check-in, posts with time slots, claims and evaluation

Revision ID: 0014v_volunteers
Revises: 0014o_calendar
Create Date: 2026-12-01 14:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '0014v_volunteers'
down_revision = '0014o_calendar'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'partner_units',
        sa.Column('id', sa.Integer(), primary_key=True),
        sa.Column('code', sa.String(60), nullable=False, unique=True),
        sa.Column('name', sa.String(200), nullable=False),
        sa.Column('kind', sa.String(60), nullable=False),
    )
    op.create_table(
        'volunteers',
        sa.Column('id', sa.Integer(), primary_key=True),
        sa.Column('person_id', sa.Integer(), sa.ForeignKey('people.id', ondelete='CASCADE'), nullable=False),
        sa.Column('community_id', sa.Integer(), sa.ForeignKey('communities.id'), nullable=False),
        sa.Column('name', sa.String(200), nullable=False),
        sa.Column('partner_unit_id', sa.Integer(), sa.ForeignKey('partner_units.id'), nullable=True),
        sa.Column('party_member', sa.Boolean(), nullable=False),
        sa.Column('status', sa.String(16), nullable=False),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.Column('decided_by_id', sa.Integer(), sa.ForeignKey('people.id'), nullable=True),
        sa.Column('decided_at', sa.DateTime(), nullable=True),
        sa.UniqueConstraint('person_id', 'community_id'),
    )
    op.create_index('ix_volunteers_person_id', 'volunteers', ['person_id'])
    op.create_index('ix_volunteers_community_id', 'volunteers', ['community_id'])
    op.create_table(
        'volunteer_posts',
        sa.Column('id', sa.Integer(), primary_key=True),
        sa.Column('community_id', sa.Integer(), sa.ForeignKey('communities.id'), nullable=False),
        sa.Column('title', sa.String(200), nullable=False),
        sa.Column('description', sa.Text(), nullable=False),
        sa.Column('place', sa.String(400), nullable=False),
        sa.Column('created_by_id', sa.Integer(), sa.ForeignKey('people.id'), nullable=False),
        sa.Column('created_at', sa.DateTime(), nullable=False),
    )
    op.create_index('ix_volunteer_posts_community_id', 'volunteer_posts', ['community_id'])
    op.create_table(
        'post_slots',
        sa.Column('id', sa.Integer(), primary_key=True),
        sa.Column('post_id', sa.Integer(), sa.ForeignKey('volunteer_posts.id', ondelete='CASCADE'), nullable=False),
        sa.Column('starts_at', sa.DateTime(), nullable=False),
        sa.Column('ends_at', sa.DateTime(), nullable=False),
        sa.Column('places', sa.Integer(), nullable=False),
        sa.Column('remind_evening_at', sa.DateTime(), nullable=True),
        sa.Column('remind_hour_at', sa.DateTime(), nullable=True),
        sa.Column('close_at', sa.DateTime(), nullable=True),
    )
    op.create_index('ix_post_slots_post_id', 'post_slots', ['post_id'])
    op.create_index('ix_post_slots_evening', 'post_slots', ['remind_evening_at'])
    op.create_index('ix_post_slots_hour', 'post_slots', ['remind_hour_at'])
    op.create_index('ix_post_slots_close', 'post_slots', ['close_at'])
    op.create_table(
        'slot_claims',
        sa.Column('id', sa.Integer(), primary_key=True),
        sa.Column('slot_id', sa.Integer(), sa.ForeignKey('post_slots.id', ondelete='CASCADE'), nullable=False),
        sa.Column('volunteer_id', sa.Integer(), sa.ForeignKey('volunteers.id', ondelete='CASCADE'), nullable=False),
        sa.Column('status', sa.String(16), nullable=False),
        sa.Column('claimed_at', sa.DateTime(), nullable=False),
        sa.Column('cancelled_at', sa.DateTime(), nullable=True),
        sa.Column('checked_in_at', sa.DateTime(), nullable=True),
        sa.Column('checked_out_at', sa.DateTime(), nullable=True),
        sa.Column('latitude', sa.Float(), nullable=True),
        sa.Column('longitude', sa.Float(), nullable=True),
        sa.Column('stars', sa.Integer(), nullable=True),
        sa.Column('comment', sa.Text(), nullable=True),
        sa.Column('rated_by_id', sa.Integer(), sa.ForeignKey('people.id'), nullable=True),
        sa.Column('rated_at', sa.DateTime(), nullable=True),
        sa.UniqueConstraint('slot_id', 'volunteer_id'),
    )
    op.create_index('ix_slot_claims_slot_id', 'slot_claims', ['slot_id'])
    op.create_index('ix_slot_claims_volunteer_id', 'slot_claims', ['volunteer_id'])


def downgrade() -> None:
    for table in ('slot_claims', 'post_slots', 'volunteer_posts', 'volunteers', 'partner_units'):
        op.drop_table(table)
