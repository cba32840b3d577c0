"""scheduler: category timers, request timers with their indexes, job runs

Revision ID: 0003_scheduler
Revises: 0002_admin_tools
Create Date: 2026-11-28 09:00:00
"""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa
from alembic import op

import storage.models

revision = '0003_scheduler'
down_revision = '0002_admin_tools'
branch_labels = None
depends_on = None

REQUEST_TIMERS = ('remind_at', 'escalate_at', 'overdue_escalated_at', 'reasked_at')


def upgrade() -> None:
    op.add_column('categories', sa.Column('remind_after_hours', sa.Integer(), server_default='24', nullable=False))
    op.add_column('categories', sa.Column('escalate_after_hours', sa.Integer(), server_default='48', nullable=False))
    with op.batch_alter_table('requests') as batch:
        for name in REQUEST_TIMERS:
            batch.add_column(sa.Column(name, storage.models.UTCDateTime(), nullable=True))
    op.create_index('ix_requests_remind', 'requests', ['status', 'remind_at'], unique=False)
    op.create_index('ix_requests_escalate', 'requests', ['status', 'escalate_at'], unique=False)
    op.create_index('ix_requests_overdue', 'requests', ['status', 'due_at'], unique=False)
    op.create_index('ix_requests_resolved', 'requests', ['status', 'resolved_at'], unique=False)
    op.create_table('job_runs',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('job', sa.String(length=40), nullable=False),
    sa.Column('period', sa.String(length=20), nullable=False),
    sa.Column('subject', sa.String(length=80), nullable=False),
    sa.Column('done_at', storage.models.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('job', 'period', 'subject')
    )
    _start_timers_of_waiting_requests()


def _start_timers_of_waiting_requests() -> None:
    # Requests already waiting for acceptance get the default timers counted from their filing.
    requests = sa.table('requests', sa.column('id', sa.Integer()), sa.column('status', sa.String()),
                        sa.column('level', sa.String()), sa.column('created_at', storage.models.UTCDateTime()),
                        sa.column('remind_at', storage.models.UTCDateTime()),
                        sa.column('escalate_at', storage.models.UTCDateTime()))
    connection = op.get_bind()
    waiting = connection.execute(
        sa.select(requests.c.id, requests.c.level, requests.c.created_at).where(requests.c.status == 'NEW')
    ).all()
    for request_id, level, created_at in waiting:
        escalate_at = None if level == 'DISTRICT' else created_at + timedelta(hours=48)
        connection.execute(
            requests.update().where(requests.c.id == request_id)
            .values(remind_at=created_at + timedelta(hours=24), escalate_at=escalate_at)
        )


def downgrade() -> None:
    op.drop_table('job_runs')
    op.drop_index('ix_requests_resolved', table_name='requests')
    op.drop_index('ix_requests_overdue', table_name='requests')
    op.drop_index('ix_requests_escalate', table_name='requests')
    op.drop_index('ix_requests_remind', table_name='requests')
    with op.batch_alter_table('requests') as batch:
        for name in REQUEST_TIMERS:
            batch.drop_column(name)
    op.drop_column('categories', 'escalate_after_hours')
    op.drop_column('categories', 'remind_after_hours')
