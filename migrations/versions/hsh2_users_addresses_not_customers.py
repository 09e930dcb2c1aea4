"""A CRM user's own address is never a customer address; colleagues' edits in the sharing history

Revision ID: hsh2_users_addresses
Revises: hsh1_domains
Create Date: 2026-12-01 10:30:00

Records that hold a user's address (sign-in, POP3 account, Send Mail As; active or not) stop
matching mail through it: those address rows go, and so do the links that exist only through
them (an email linked to the record that involves none of the record's other addresses). The
record's Email field keeps what was written, so nothing is lost from the record itself; the form
asks for another address at its next edit.
"""
from alembic import op
import sqlalchemy as sa

revision = 'hsh2_users_addresses'
down_revision = 'hsh1_domains'
branch_labels = None
depends_on = None

USERS_ADDRESSES = """
    SELECT lower(trim(email)) AS address FROM users
    UNION SELECT lower(trim(email)) FROM mail_accounts
    UNION SELECT lower(trim(from_address)) FROM send_as
"""


def upgrade():
    with op.batch_alter_table('sharing_changes', schema=None) as batch_op:
        batch_op.add_column(sa.Column('by_user_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('record_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('notice', sa.Boolean(), nullable=False, server_default=sa.false()))
        batch_op.create_foreign_key(batch_op.f('fk_sharing_changes_by_user_id_users'), 'users', ['by_user_id'], ['id'],
                                    ondelete='SET NULL')
        batch_op.create_foreign_key(batch_op.f('fk_sharing_changes_record_id_records'), 'records', ['record_id'], ['id'],
                                    ondelete='SET NULL')
    with op.batch_alter_table('sharing_changes', schema=None) as batch_op:
        batch_op.alter_column('notice', server_default=None)
    # Links through a user's address only: the email involves that address on a record that holds
    # it, and none of the record's customer addresses.
    op.execute(f"""
        DELETE FROM email_links WHERE EXISTS (
            SELECT 1 FROM record_addresses ra JOIN email_participants p ON p.address = ra.address
            WHERE ra.record_id = email_links.record_id AND p.email_id = email_links.email_id
              AND ra.address IN ({USERS_ADDRESSES}))
          AND NOT EXISTS (
            SELECT 1 FROM record_addresses ra JOIN email_participants p ON p.address = ra.address
            WHERE ra.record_id = email_links.record_id AND p.email_id = email_links.email_id
              AND ra.address NOT IN ({USERS_ADDRESSES}))
    """)
    op.execute(f"DELETE FROM record_addresses WHERE address IN ({USERS_ADDRESSES})")


def downgrade():
    with op.batch_alter_table('sharing_changes', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_sharing_changes_record_id_records'), type_='foreignkey')
        batch_op.drop_constraint(batch_op.f('fk_sharing_changes_by_user_id_users'), type_='foreignkey')
        batch_op.drop_column('notice')
        batch_op.drop_column('record_id')
        batch_op.drop_column('by_user_id')
