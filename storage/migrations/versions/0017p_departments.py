"""departments the street or district hands requests to (分流), and a request's dispatch

Revision ID: 0017p_departments
Revises: 0016v_resident_ratings
Create Date: 2026-12-04 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0017p_departments'
down_revision = '0016v_resident_ratings'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'departments',
        sa.Column('id', sa.Integer(), primary_key=True),
        sa.Column('code', sa.String(60), nullable=False, unique=True),
        sa.Column('name', sa.String(200), nullable=False),
        sa.Column('street_id', sa.Integer(), sa.ForeignKey('streets.id'), nullable=True),
        sa.Column('active', sa.Boolean(), nullable=False),
    )
    op.create_index('ix_departments_street_id', 'departments', ['street_id'])
    with op.batch_alter_table('requests') as batch:
        batch.add_column(sa.Column('dispatched_level', sa.String(16), nullable=True))
        batch.add_column(sa.Column('dispatched_unit_id', sa.Integer(), nullable=True))
        batch.add_column(sa.Column('department_due_at', sa.DateTime(), nullable=True))
        batch.add_column(sa.Column('department_check_at', sa.DateTime(), nullable=True))
        batch.create_index('ix_requests_department_check_at', ['department_check_at'])


def downgrade() -> None:
    with op.batch_alter_table('requests') as batch:
        batch.drop_index('ix_requests_department_check_at')
        batch.drop_column('department_check_at')
        batch.drop_column('department_due_at')
        batch.drop_column('dispatched_unit_id')
        batch.drop_column('dispatched_level')
    op.drop_index('ix_departments_street_id', table_name='departments')
    op.drop_table('departments')
