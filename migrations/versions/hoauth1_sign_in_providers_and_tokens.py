"""Sign in with OAuth 2.0: the organisation's sign-in providers; tokens on mail accounts and Send Mail As

Revision ID: hoauth1
Revises: hsh3_org_seeded
Create Date: 2026-12-02 10:00:00
"""
from alembic import op
import sqlalchemy as sa

revision = 'hoauth1'
down_revision = 'hsh3_org_seeded'
branch_labels = None
depends_on = None

EMPTY = sa.text("''")


def _token_columns(batch_op, table: str) -> None:
    batch_op.add_column(sa.Column('sign_in_provider_id', sa.Integer(), nullable=True))
    batch_op.add_column(sa.Column('access_token_encrypted', sa.Text(), nullable=False, server_default=EMPTY))
    batch_op.add_column(sa.Column('refresh_token_encrypted', sa.Text(), nullable=False, server_default=EMPTY))
    batch_op.add_column(sa.Column('token_expires_at', sa.DateTime(timezone=True), nullable=True))
    batch_op.create_foreign_key(batch_op.f(f'fk_{table}_sign_in_provider_id_sign_in_providers'),
                                'sign_in_providers', ['sign_in_provider_id'], ['id'], ondelete='SET NULL')


def upgrade():
    op.create_table(
        'sign_in_providers',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('key', sa.String(length=40), nullable=False),
        sa.Column('name', sa.String(length=80), nullable=False),
        sa.Column('authorization_url', sa.Text(), nullable=False),
        sa.Column('token_url', sa.Text(), nullable=False),
        sa.Column('revocation_url', sa.Text(), nullable=False),
        sa.Column('scopes', sa.Text(), nullable=False),
        sa.Column('domains', sa.Text(), nullable=False),
        sa.Column('covers_smtp', sa.Boolean(), nullable=False),
        sa.Column('client_id_encrypted', sa.Text(), nullable=False),
        sa.Column('client_secret_encrypted', sa.Text(), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_sign_in_providers')),
        sa.UniqueConstraint('key', name=op.f('uq_sign_in_providers_key')),
    )
    with op.batch_alter_table('mail_accounts', schema=None) as batch_op:
        _token_columns(batch_op, 'mail_accounts')
    with op.batch_alter_table('send_as', schema=None) as batch_op:
        _token_columns(batch_op, 'send_as')
        batch_op.add_column(sa.Column('refresh_lease_until', sa.DateTime(timezone=True), nullable=True))


def downgrade():
    for table in ('send_as', 'mail_accounts'):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_constraint(batch_op.f(f'fk_{table}_sign_in_provider_id_sign_in_providers'),
                                     type_='foreignkey')
            if table == 'send_as':
                batch_op.drop_column('refresh_lease_until')
            for column in ('token_expires_at', 'refresh_token_encrypted', 'access_token_encrypted',
                           'sign_in_provider_id'):
                batch_op.drop_column(column)
    op.drop_table('sign_in_providers')
