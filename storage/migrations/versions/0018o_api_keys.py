"""partner apps' keys for Open311 GeoReport v2 (hashes only)

Revision ID: 0018o_api_keys
Revises: 0018g_department_work
Create Date: 2026-12-05 11:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0018o_api_keys'
down_revision = '0018g_department_work'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'api_keys',
        sa.Column('id', sa.Integer(), primary_key=True),
        sa.Column('name', sa.String(100), nullable=False),
        sa.Column('key_hash', sa.String(64), nullable=False, unique=True),
        sa.Column('person_id', sa.Integer(), sa.ForeignKey('people.id'), nullable=False),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.Column('revoked_at', sa.DateTime(), nullable=True),
    )
    op.create_index('ix_api_keys_name', 'api_keys', ['name'])


def downgrade() -> None:
    op.drop_index('ix_api_keys_name', table_name='api_keys')
    op.drop_table('api_keys')
