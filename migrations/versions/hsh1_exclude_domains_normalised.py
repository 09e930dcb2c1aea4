"""Exclude Domains and participants' domains in one spelling (models.normalise_domain)

Revision ID: hsh1_domains
Revises: hweb01
Create Date: 2026-12-01 10:00:00

Domains used to be stored as written (lowercase): a Unicode spelling never matched its punycode
one. Both sides are rewritten in the IDNA ASCII form that the code now writes.
"""
import idna
from alembic import op
import sqlalchemy as sa

revision = 'hsh1_domains'
down_revision = 'hweb01'
branch_labels = None
depends_on = None


def normalise_domain(text):
    # models.normalise_domain as of this revision (a migration keeps its own copy: it must not change).
    domain = (text or "").strip().rstrip(".").lower()
    if domain.isascii():
        return domain
    try:
        return idna.encode(domain, uts46=True).decode("ascii")
    except (idna.IDNAError, UnicodeError):
        return domain


def upgrade():
    bind = op.get_bind()
    participants = sa.table("email_participants", sa.column("domain", sa.String))
    for (domain,) in bind.execute(sa.select(participants.c.domain).distinct()).all():
        if normalise_domain(domain) != domain:
            bind.execute(participants.update().where(participants.c.domain == domain)
                         .values(domain=normalise_domain(domain)))
    excluded = sa.table("excluded_domains", sa.column("user_id", sa.Integer), sa.column("domain", sa.String))
    for user_id, domain in bind.execute(sa.select(excluded.c.user_id, excluded.c.domain)).all():
        wanted = normalise_domain(domain)
        if wanted == domain:
            continue
        row = excluded.c.user_id == user_id
        if bind.execute(sa.select(excluded.c.domain).where(row, excluded.c.domain == wanted)).first():
            bind.execute(excluded.delete().where(row, excluded.c.domain == domain))  # two spellings, one domain
        else:
            bind.execute(excluded.update().where(row, excluded.c.domain == domain).values(domain=wanted))


def downgrade():
    pass  # the ASCII form is a valid spelling for the old code too
