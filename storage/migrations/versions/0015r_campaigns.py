"""focused campaigns (重点整治): a campaign per area with its target buildings and what workers recorded

Revision ID: 0015r_campaigns
Revises: 0016p_places
Create Date: 2026-12-02 12:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0015r_campaigns'
down_revision = '0016p_places'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'campaigns',
        sa.Column('id', sa.Integer(), primary_key=True),
        sa.Column('name', sa.String(100), nullable=False),
        sa.Column('category_id', sa.Integer(), sa.ForeignKey('categories.id'), nullable=False),
        sa.Column('level', sa.Enum('DISTRICT', 'STREET', 'COMMUNITY', 'GRID', 'BUILDING', name='level',
                                   native_enum=False, length=16), nullable=False),
        sa.Column('unit_id', sa.Integer(), nullable=False),
        sa.Column('owner_id', sa.Integer(), sa.ForeignKey('people.id'), nullable=False),
        sa.Column('ends_on', sa.Date(), nullable=False),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.Column('final_report_at', sa.DateTime(), nullable=True),
    )
    op.create_index('ix_campaigns_owner_id', 'campaigns', ['owner_id'])
    op.create_table(
        'campaign_targets',
        sa.Column('id', sa.Integer(), primary_key=True),
        sa.Column('campaign_id', sa.Integer(), sa.ForeignKey('campaigns.id', ondelete='CASCADE'), nullable=False),
        sa.Column('building_id', sa.Integer(), sa.ForeignKey('buildings.id'), nullable=False),
        sa.Column('grid_id', sa.Integer(), sa.ForeignKey('grids.id'), nullable=False),
        sa.Column('status', sa.Enum('PENDING', 'RECTIFIED', 'NOT_RECTIFIED', name='targetstatus',
                                    native_enum=False, length=16), nullable=False),
        sa.Column('note', sa.Text(), nullable=False),
        sa.Column('photo', sa.String(200), nullable=True),
        sa.Column('recorded_by_id', sa.Integer(), sa.ForeignKey('people.id'), nullable=True),
        sa.Column('recorded_at', sa.DateTime(), nullable=True),
        sa.UniqueConstraint('campaign_id', 'building_id', name='uq_campaign_targets_building'),
    )
    op.create_index('ix_campaign_targets_campaign_id', 'campaign_targets', ['campaign_id'])
    op.create_index('ix_campaign_targets_grid', 'campaign_targets', ['grid_id', 'status'])


def downgrade() -> None:
    op.drop_table('campaign_targets')
    op.drop_table('campaigns')
