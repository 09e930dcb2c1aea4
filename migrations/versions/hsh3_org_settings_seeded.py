"""The organisation's settings row is seeded here, not created by the first page that reads it

Revision ID: hsh3_org_seeded
Revises: hsh2_users_addresses
Create Date: 2026-12-01 11:00:00
"""
from alembic import op
import sqlalchemy as sa

revision = 'hsh3_org_seeded'
down_revision = 'hsh2_users_addresses'
branch_labels = None
depends_on = None

# The defaults as of this revision: the add-on off until an administrator enables it.
DEFAULTS = {"id": 1, "mail_addon_enabled": False, "timezone": "UTC", "allowed_mail_hosts": "", "hosted_domain": "",
            "hosted_pop_host": "", "hosted_pop_port": 995, "hosted_pop_security": "ssl", "hosted_smtp_host": "",
            "hosted_smtp_port": 587, "hosted_smtp_security": "starttls", "daily_send_limit_per_user": 300}


def upgrade():
    bind = op.get_bind()
    # Only the columns the table has at this point of the chain (others may have come or gone).
    present = {c["name"] for c in sa.inspect(bind).get_columns("org_settings")}
    values = {k: v for k, v in DEFAULTS.items() if k in present}
    table = sa.table("org_settings", *(sa.column(k) for k in values))
    if bind.execute(sa.text("SELECT count(*) FROM org_settings WHERE id = 1")).scalar() == 0:
        bind.execute(table.insert().values(**values))


def downgrade():
    pass  # the row stays: older code reads it the same way
