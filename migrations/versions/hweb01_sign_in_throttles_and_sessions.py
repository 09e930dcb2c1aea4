"""sign-in throttles per address and client; server-side sessions

Revision ID: hweb01
Revises: hin1_ledger_uidl
Create Date: 2026-12-01 10:00:00

"""
from alembic import op
import sqlalchemy as sa


revision = 'hweb01'
down_revision = 'hin1_ledger_uidl'
branch_labels = None
depends_on = None


def upgrade():
    # Failures per address alone let a stranger lock a user out: forgotten, not carried over.
    op.drop_table('sign_in_failures')
    op.create_table('sign_in_throttles',
    sa.Column('address', sa.String(length=254), nullable=False),
    sa.Column('client', sa.String(length=64), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('last_attempt_s', sa.Float(), nullable=False),
    sa.Column('next_try_s', sa.Float(), nullable=False),
    sa.PrimaryKeyConstraint('address', 'client', name=op.f('pk_sign_in_throttles'))
    )
    with op.batch_alter_table('sign_in_throttles', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_sign_in_throttles_last_attempt_s'), ['last_attempt_s'], unique=False)
    # Sessions signed in before this had no row: they end, and their users sign in once more.
    op.create_table('user_sessions',
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_user_sessions_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('token_hash', name=op.f('pk_user_sessions'))
    )
    with op.batch_alter_table('user_sessions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_user_sessions_user_id'), ['user_id'], unique=False)


def downgrade():
    with op.batch_alter_table('user_sessions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_user_sessions_user_id'))
    op.drop_table('user_sessions')
    with op.batch_alter_table('sign_in_throttles', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_sign_in_throttles_last_attempt_s'))
    op.drop_table('sign_in_throttles')
    op.create_table('sign_in_failures',
    sa.Column('email', sa.String(length=254), nullable=False),
    sa.Column('failures', sa.Integer(), nullable=False),
    sa.Column('last_failure_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('email', name=op.f('pk_sign_in_failures'))
    )
