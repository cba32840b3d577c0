"""places (markets, alleys, squares) in grids, grid boundaries, and requests about a place or a location

Revision ID: 0016p_places
Revises: 0016o_team_chats
Create Date: 2026-12-03 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0016p_places'
down_revision = '0016o_team_chats'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'places',
        sa.Column('id', sa.Integer(), primary_key=True),
        sa.Column('code', sa.String(60), nullable=False, unique=True),
        sa.Column('name', sa.String(200), nullable=False),
        sa.Column('kind', sa.String(40), nullable=False),
        sa.Column('address', sa.String(400), nullable=False),
        sa.Column('latitude', sa.Float(), nullable=True),
        sa.Column('longitude', sa.Float(), nullable=True),
        sa.Column('grid_id', sa.Integer(), sa.ForeignKey('grids.id'), nullable=False),
        sa.Column('active', sa.Boolean(), nullable=False),
    )
    op.create_index('ix_places_grid_id', 'places', ['grid_id'])
    op.create_index('ix_places_location', 'places', ['latitude', 'longitude'])
    with op.batch_alter_table('grids') as batch:
        batch.add_column(sa.Column('boundary', sa.JSON(), nullable=True))
        for column in ('min_latitude', 'max_latitude', 'min_longitude', 'max_longitude'):
            batch.add_column(sa.Column(column, sa.Float(), nullable=True))
        batch.create_index('ix_grids_bounds', ['min_latitude', 'min_longitude'])
    with op.batch_alter_table('requests') as batch:
        batch.add_column(sa.Column('place_id', sa.Integer(), nullable=True))
        batch.add_column(sa.Column('grid_id', sa.Integer(), nullable=True))
    # Every request so far is about a building: its grid is the building's.
    op.execute(
        "UPDATE requests SET grid_id = (SELECT buildings.grid_id FROM buildings"
        " WHERE buildings.id = requests.building_id)"
    )
    with op.batch_alter_table('requests') as batch:
        batch.alter_column('grid_id', existing_type=sa.Integer(), nullable=False)
        batch.alter_column('building_id', existing_type=sa.Integer(), nullable=True)
        batch.create_foreign_key('fk_requests_place_id_places', 'places', ['place_id'], ['id'])
        batch.create_foreign_key('fk_requests_grid_id_grids', 'grids', ['grid_id'], ['id'])
        batch.create_index('ix_requests_place_id', ['place_id'])
        batch.create_index('ix_requests_grid_id', ['grid_id'])


def downgrade() -> None:
    with op.batch_alter_table('requests') as batch:
        batch.drop_index('ix_requests_grid_id')
        batch.drop_index('ix_requests_place_id')
        batch.drop_constraint('fk_requests_grid_id_grids', type_='foreignkey')
        batch.drop_constraint('fk_requests_place_id_places', type_='foreignkey')
        batch.alter_column('building_id', existing_type=sa.Integer(), nullable=False)
        batch.drop_column('grid_id')
        batch.drop_column('place_id')
    with op.batch_alter_table('grids') as batch:
        batch.drop_index('ix_grids_bounds')
        for column in ('max_longitude', 'min_longitude', 'max_latitude', 'min_latitude', 'boundary'):
            batch.drop_column(column)
    op.drop_index('ix_places_location', 'places')
    op.drop_index('ix_places_grid_id', 'places')
    op.drop_table('places')
