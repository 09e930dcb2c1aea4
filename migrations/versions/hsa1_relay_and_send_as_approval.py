"""The organisation's outgoing relay; Send Mail As approval by an administrator

Revision ID: hsa1
Revises: 0003
Create Date: 2026-12-01 21:22:53.445709

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'hsa1'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('org_settings', schema=None) as batch_op:
        batch_op.add_column(sa.Column('relay_host', sa.String(length=253), nullable=False, server_default=sa.text("''")))
        batch_op.add_column(sa.Column('relay_port', sa.Integer(), nullable=False, server_default=sa.text("'587'")))
        batch_op.add_column(sa.Column('relay_security', sa.String(length=16), nullable=False, server_default=sa.text("'starttls'")))
        batch_op.add_column(sa.Column('relay_username', sa.String(length=254), nullable=False, server_default=sa.text("''")))
        batch_op.add_column(sa.Column('relay_password_encrypted', sa.Text(), nullable=False, server_default=sa.text("''")))
        batch_op.add_column(sa.Column('relay_from_address', sa.String(length=254), nullable=False, server_default=sa.text("''")))

    with op.batch_alter_table('send_as', schema=None) as batch_op:
        batch_op.add_column(sa.Column('approval', sa.Enum('none', 'pending', 'approved', 'denied', name='approval', native_enum=False, length=16), nullable=False, server_default=sa.text("'none'")))
        batch_op.add_column(sa.Column('approved_by_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('approval_decided_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.create_index(batch_op.f('ix_send_as_approval'), ['approval'], unique=False)
        batch_op.create_foreign_key(batch_op.f('fk_send_as_approved_by_id_users'), 'users', ['approved_by_id'], ['id'], ondelete='SET NULL')



def downgrade():
    with op.batch_alter_table('send_as', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_send_as_approved_by_id_users'), type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_send_as_approval'))
        batch_op.drop_column('approval_decided_at')
        batch_op.drop_column('approved_by_id')
        batch_op.drop_column('approval')

    with op.batch_alter_table('org_settings', schema=None) as batch_op:
        batch_op.drop_column('relay_from_address')
        batch_op.drop_column('relay_password_encrypted')
        batch_op.drop_column('relay_username')
        batch_op.drop_column('relay_security')
        batch_op.drop_column('relay_port')
        batch_op.drop_column('relay_host')

