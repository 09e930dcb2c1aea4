"""fetch ledger: a UIDL may name two messages (issue 9.1)

Some POP3 servers (GNU Mailutils) take a message's UIDL from an X-UIDL header that the sender
wrote, so two messages can share one: the ledger keeps a row for each, and looks UIDLs up by index.

Revision ID: hin1_ledger_uidl
Revises: hsa1
"""
from alembic import op


revision = 'hin1_ledger_uidl'
down_revision = 'hsa1'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('fetched_messages', schema=None) as batch_op:
        batch_op.drop_constraint('uq_fetched_messages_account_id', type_='unique')
        batch_op.create_index('ix_fetched_account_uidl', ['account_id', 'uidl'], unique=False)


def downgrade():
    # Rows sharing a UIDL cannot stay under the unique constraint: keep the oldest of each.
    op.execute("DELETE FROM fetched_messages WHERE uidl IS NOT NULL AND id NOT IN "
               "(SELECT min(id) FROM fetched_messages WHERE uidl IS NOT NULL GROUP BY account_id, uidl)")
    with op.batch_alter_table('fetched_messages', schema=None) as batch_op:
        batch_op.drop_index('ix_fetched_account_uidl')
        batch_op.create_unique_constraint('uq_fetched_messages_account_id', ['account_id', 'uidl'])
