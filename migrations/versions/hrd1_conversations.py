"""Conversations: each email's conversation id, and the Message-IDs each conversation carries; existing mail grouped

Revision ID: hrd1_conversations
Revises: hoauth1
Create Date: 2026-12-01 22:10:00
"""
from collections import defaultdict
from datetime import timedelta

from alembic import op
import sqlalchemy as sa

import models
from mail.inbound.threads import fallback_key

revision = 'hrd1_conversations'
down_revision = 'hoauth1'
branch_labels = None
depends_on = None

FALLBACK_WINDOW = timedelta(days=30)  # as mail.inbound.threads at this revision
MESSAGE_ID_CHARS = 998
BATCH_ROWS = 2000


def upgrade():
    op.create_table('conversations',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('fallback_key', sa.String(length=64), nullable=True),
    sa.Column('last_date', models.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_conversations'))
    )
    with op.batch_alter_table('conversations', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_conversations_fallback_key'), ['fallback_key'], unique=False)

    op.create_table('conversation_keys',
    sa.Column('message_id', sa.String(length=998), nullable=False),
    sa.Column('conversation_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['conversation_id'], ['conversations.id'], name=op.f('fk_conversation_keys_conversation_id_conversations'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('message_id', name=op.f('pk_conversation_keys'))
    )
    with op.batch_alter_table('conversation_keys', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_conversation_keys_conversation_id'), ['conversation_id'], unique=False)

    # In place, never a batch (copy-and-move) of emails on SQLite: dropping the old table would
    # cascade to its attachments, participants and links (hence no foreign key: models.Email).
    op.add_column('emails', sa.Column('conversation_id', sa.Integer(), nullable=True))
    op.create_index('ix_emails_conversation_date', 'emails', ['conversation_id', 'date', 'id'], unique=False)
    _group_existing_mail(op.get_bind())


def _group_existing_mail(bind):
    """The mail already here, grouped as mail.inbound.threads groups mail as it is stored:
    messages that name one another are one conversation; groups with the same subject and
    people within the window are one too."""
    emails = sa.table('emails', sa.column('id'), sa.column('message_id'), sa.column('in_reply_to'),
                      sa.column('references'), sa.column('subject'), sa.column('date', models.UTCDateTime()),
                      sa.column('conversation_id'))
    people = sa.table('email_participants', sa.column('email_id'), sa.column('address'))
    rows = bind.execute(sa.select(emails.c.id, emails.c.message_id, emails.c.in_reply_to, emails.c.references,
                                  emails.c.subject, emails.c.date).order_by(emails.c.date, emails.c.id)).all()
    if not rows:
        return
    participants = defaultdict(set)
    for email_id, address in bind.execute(sa.select(people.c.email_id, people.c.address)):
        participants[email_id].add(address)
    parent = list(range(len(rows)))

    def root(i):
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    first_with, names = {}, []
    for i, row in enumerate(rows):
        named = {n[:MESSAGE_ID_CHARS] for n in [row.message_id, row.in_reply_to, *(row.references or "").split()] if n}
        names.append(named)
        for name in named:
            parent[root(i)] = root(first_with.setdefault(name, i))
    groups = defaultdict(list)
    for i in range(len(rows)):
        groups[root(i)].append(i)
    conversations, by_key, conversation_of = [], {}, {}
    for members in sorted(groups.values(), key=lambda m: m[0]):  # by their first message's date
        first = rows[members[0]]
        key = fallback_key(first.subject or "", participants[first.id])
        last = max(rows[i].date for i in members)
        near = by_key.get(key) if key else None
        if near is not None and abs(first.date - conversations[near]["last_date"]) <= FALLBACK_WINDOW:
            conversations[near]["last_date"] = max(conversations[near]["last_date"], last)
            index = near
        else:
            conversations.append({"id": len(conversations) + 1, "fallback_key": key, "last_date": last})
            index = len(conversations) - 1
            if key:
                by_key[key] = index
        conversation_of.update((i, conversations[index]["id"]) for i in members)
    table = sa.table('conversations', sa.column('id'), sa.column('fallback_key'),
                     sa.column('last_date', models.UTCDateTime()))
    keys = sa.table('conversation_keys', sa.column('message_id'), sa.column('conversation_id'))
    key_rows = {}
    for i, named in enumerate(names):
        for name in named:
            key_rows.setdefault(name, conversation_of[i])
    update = (sa.update(emails).where(emails.c.id == sa.bindparam('email_id'))
              .values(conversation_id=sa.bindparam('cid')))
    for statement, values in (
            (table.insert(), conversations),
            (keys.insert(), [{"message_id": k, "conversation_id": v} for k, v in key_rows.items()]),
            (update, [{"email_id": rows[i].id, "cid": cid} for i, cid in conversation_of.items()])):
        for start in range(0, len(values), BATCH_ROWS):
            bind.execute(statement, values[start:start + BATCH_ROWS])
    if bind.dialect.name == "postgresql":  # ids were given here: the sequence continues after them
        bind.execute(sa.text("SELECT setval(pg_get_serial_sequence('conversations', 'id'), :n)"),
                     {"n": len(conversations)})


def downgrade():
    op.drop_index('ix_emails_conversation_date', table_name='emails')
    op.execute("ALTER TABLE emails DROP COLUMN conversation_id")  # in place, as in upgrade

    with op.batch_alter_table('conversation_keys', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_conversation_keys_conversation_id'))

    op.drop_table('conversation_keys')
    with op.batch_alter_table('conversations', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_conversations_fallback_key'))

    op.drop_table('conversations')
