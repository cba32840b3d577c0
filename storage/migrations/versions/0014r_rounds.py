"""grid workers' rounds: leads on requests, visits with a target per grid, night patrols with their points

Revision ID: 0014r_rounds
Revises: 0014v_volunteers
Create Date: 2026-12-02 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0014r_rounds'
down_revision = '0014v_volunteers'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('grids') as batch:
        batch.add_column(sa.Column('visit_target', sa.Integer(), nullable=True))
    with op.batch_alter_table('requests') as batch:
        batch.add_column(sa.Column('lead_by_id', sa.Integer(), nullable=True))
        batch.add_column(sa.Column('on_the_spot', sa.Boolean(), server_default=sa.false(), nullable=False))
        batch.create_foreign_key('fk_requests_lead_by_id_people', 'people', ['lead_by_id'], ['id'])
        batch.create_index('ix_requests_lead_by_id', ['lead_by_id'])
    op.create_table(
        'visits',
        sa.Column('id', sa.Integer(), primary_key=True),
        sa.Column('worker_id', sa.Integer(), sa.ForeignKey('people.id'), nullable=False),
        sa.Column('grid_id', sa.Integer(), sa.ForeignKey('grids.id'), nullable=False),
        sa.Column('building_id', sa.Integer(), sa.ForeignKey('buildings.id'), nullable=False),
        sa.Column('room', sa.String(40), nullable=False),
        sa.Column('met', sa.String(200), nullable=False),
        sa.Column('note', sa.Text(), nullable=False),
        sa.Column('photo', sa.String(200), nullable=True),
        sa.Column('request_id', sa.Integer(), sa.ForeignKey('requests.id', ondelete='SET NULL'), nullable=True),
        sa.Column('at', sa.DateTime(), nullable=False),
    )
    op.create_index('ix_visits_worker_at', 'visits', ['worker_id', 'at'])
    op.create_index('ix_visits_grid_at', 'visits', ['grid_id', 'at'])
    op.create_index('ix_visits_building_at', 'visits', ['building_id', 'at'])
    op.create_table(
        'patrols',
        sa.Column('id', sa.Integer(), primary_key=True),
        sa.Column('worker_id', sa.Integer(), sa.ForeignKey('people.id'), nullable=False),
        sa.Column('grid_id', sa.Integer(), sa.ForeignKey('grids.id'), nullable=False),
        sa.Column('started_at', sa.DateTime(), nullable=False),
        sa.Column('ended_at', sa.DateTime(), nullable=True),
        sa.Column('auto_closed', sa.Boolean(), nullable=False),
        sa.Column('distance_m', sa.Float(), nullable=False),
    )
    op.create_index('ix_patrols_worker_id', 'patrols', ['worker_id'])
    op.create_index('ix_patrols_grid_id', 'patrols', ['grid_id'])
    op.create_index('ix_patrols_open', 'patrols', ['ended_at', 'started_at'])
    op.create_table(
        'patrol_points',
        sa.Column('id', sa.Integer(), primary_key=True),
        sa.Column('patrol_id', sa.Integer(), sa.ForeignKey('patrols.id', ondelete='CASCADE'), nullable=False),
        sa.Column('at', sa.DateTime(), nullable=False),
        sa.Column('latitude', sa.Float(), nullable=False),
        sa.Column('longitude', sa.Float(), nullable=False),
    )
    op.create_index('ix_patrol_points_patrol_id', 'patrol_points', ['patrol_id'])
    op.create_table(
        'patrol_findings',
        sa.Column('patrol_id', sa.Integer(), sa.ForeignKey('patrols.id', ondelete='CASCADE'), primary_key=True),
        sa.Column('request_id', sa.Integer(), sa.ForeignKey('requests.id', ondelete='CASCADE'), primary_key=True),
    )


def downgrade() -> None:
    op.drop_table('patrol_findings')
    op.drop_table('patrol_points')
    op.drop_table('patrols')
    op.drop_table('visits')
    with op.batch_alter_table('requests') as batch:
        batch.drop_index('ix_requests_lead_by_id')
        batch.drop_constraint('fk_requests_lead_by_id_people', type_='foreignkey')
        batch.drop_column('on_the_spot')
        batch.drop_column('lead_by_id')
    with op.batch_alter_table('grids') as batch:
        batch.drop_column('visit_target')
