"""Read side at a million emails: the owner copied onto email links (backfilled), and the indexes
the pages need (folder and unread counts, labels, the related list per owner, Leads by name)

Revision ID: hpg1_read_side_indexes
Revises: hrd1_conversations
Create Date: 2026-12-02 00:30:00
"""
from alembic import op
import sqlalchemy as sa

revision = 'hpg1_read_side_indexes'
down_revision = 'hrd1_conversations'
branch_labels = None
depends_on = None


def upgrade():
    # In place (add column, fill, then NOT NULL), never a batch copy of email_links on SQLite.
    op.add_column('email_links', sa.Column('owner_id', sa.Integer(), nullable=True))
    op.execute("UPDATE email_links SET owner_id = (SELECT emails.owner_id FROM emails "
               "WHERE emails.id = email_links.email_id)")
    if op.get_bind().dialect.name == 'postgresql':
        op.alter_column('email_links', 'owner_id', nullable=False)
    else:
        with op.batch_alter_table('email_links', schema=None) as batch_op:
            batch_op.alter_column('owner_id', existing_type=sa.Integer(), nullable=False)
    op.create_index('ix_email_links_record_owner_date', 'email_links',
                    ['record_id', 'owner_id', 'email_date', 'email_id'], unique=False)
    op.create_index('ix_emails_owner_folder_state_read', 'emails', ['owner_id', 'folder', 'send_state', 'is_read'],
                    unique=False)
    op.create_index('ix_emails_owner_label_date', 'emails', ['owner_id', 'label', 'date'], unique=False)
    op.create_index('ix_records_kind_name', 'records',
                    ['kind', sa.text('lower(last_name)'), sa.text('lower(first_name)'), 'id'], unique=False)


def downgrade():
    op.drop_index('ix_records_kind_name', table_name='records')
    op.drop_index('ix_emails_owner_label_date', table_name='emails')
    op.drop_index('ix_emails_owner_folder_state_read', table_name='emails')
    op.drop_index('ix_email_links_record_owner_date', table_name='email_links')
    with op.batch_alter_table('email_links', schema=None) as batch_op:
        batch_op.drop_column('owner_id')
