"""request messages: outbox rows name the request they show, so its cards are edited when it changes

Revision ID: 0010_request_messages
Revises: 0009_privacy
Create Date: 2026-12-01 12:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0010_request_messages'
down_revision = '0009_privacy'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Empty for messages already sent: cards sent before the upgrade stay as they are.
    with op.batch_alter_table('outbox') as batch:
        batch.add_column(sa.Column('request_id', sa.Integer(), nullable=True))
        batch.create_index('ix_outbox_request_id', ['request_id'])
        batch.create_foreign_key(
            'fk_outbox_request_id_requests', 'requests', ['request_id'], ['id'], ondelete='SET NULL'
        )


def downgrade() -> None:
    with op.batch_alter_table('outbox') as batch:
        batch.drop_constraint('fk_outbox_request_id_requests', type_='foreignkey')
        batch.drop_index('ix_outbox_request_id')
        batch.drop_column('request_id')
