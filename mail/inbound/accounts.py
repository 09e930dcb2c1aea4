"""POP3 accounts: test, create, change password, default, delete. Per user, always."""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select

from mail import oauth, signin
from mail.inbound import pop3
from mail.context import MailContext
from mail.errors import TestReport
from models import AccountState, MailAccount, Security, User, db, utcnow


@dataclass
class AccountInput:
    """What the Add POP3 Account form says."""

    name: str
    email: str
    host: str
    port: int
    security: str
    username: str
    password: str
    leave_on_server: bool = True


def settings_for(ctx: MailContext, host: str, port: int, security: str, username: str,
                 password: str) -> pop3.Pop3Settings:
    return pop3.Pop3Settings(host=host, port=port, security=security, username=username,
                             password=password, timeout_s=ctx.timeout_s, cafile=ctx.cafile)


def test(ctx: MailContext, data: AccountInput) -> TestReport:
    """A real POP3 session with these settings (Test Account); nothing is saved.

    Ends the caller's transaction first: the server may take its whole timeout to answer.
    """
    return pop3.test_account(ctx.settings(data, data.password), ctx.policy_then_release())


def user_accounts(user: User) -> list[MailAccount]:
    return list(db.session.scalars(
        select(MailAccount).where(MailAccount.user_id == user.id).order_by(MailAccount.id)))


def get_account(user: User, account_id: int) -> MailAccount | None:
    """The user's own account, or None: another user's account does not exist for them."""
    return db.session.scalar(select(MailAccount).where(MailAccount.id == account_id,
                                                       MailAccount.user_id == user.id))


def duplicate_exists(user: User, host: str, username: str) -> bool:
    return db.session.scalar(select(func.count()).select_from(MailAccount).where(
        MailAccount.user_id == user.id, func.lower(MailAccount.host) == host.strip().lower(),
        MailAccount.username == username)) > 0


def create(ctx: MailContext, user: User, data: AccountInput) -> tuple[MailAccount | None, TestReport]:
    """Test the settings, then save the account if the sign-in worked (Create Account).

    The user's first account becomes their default. The test runs outside any transaction. The
    first poll is asked for in the same commit (as Fetch now would), so the account list shows it
    from its start, and no poller can slip a poll in between and leave a second one to follow.
    """
    report = test(ctx, data)
    if not report.ok:
        return None, report
    first = not user_accounts(user)
    account = MailAccount(
        user_id=user.id, name=data.name, email=data.email.strip().lower(), host=data.host.strip().lower(),
        port=data.port, security=Security(data.security), username=data.username,
        password_encrypted=ctx.box.encrypt(data.password), leave_on_server=data.leave_on_server,
        is_default=first, state=AccountState.READY, uidl_supported=report.uidl_supported is not False,
        last_checked_at=utcnow(), last_error="", poll_requested=True,
    )
    db.session.add(account)
    db.session.commit()
    return account, report


def connection_settings(ctx: MailContext, account: MailAccount) -> pop3.Pop3Settings:
    """How to sign in to the account's server now: its password, or for an account signed in with
    OAuth 2.0 an access token, refreshed first if it is about to expire (only a poll holding the
    account's lease calls this). Ends the caller's transaction when it refreshes.

    Raises SecretError for a password that cannot be decrypted, MailError when the provider
    refuses the sign-in ('auth': Sign in again) or cannot be reached ('network').
    """
    if account.signs_in:
        host, port, security, username = account.host, account.port, account.security.value, account.username
        token = signin.account_token(ctx, account)
        return pop3.Pop3Settings(host=host, port=port, security=security, username=username, password=token,
                                 timeout_s=ctx.timeout_s, cafile=ctx.cafile, oauth=True)
    return settings_for(ctx, account.host, account.port, account.security.value, account.username,
                        password_of(ctx, account))


def test_signed_in(ctx: MailContext, data: AccountInput, tokens: oauth.Tokens) -> TestReport:
    """Test Account with a fresh sign-in's access token (XOAUTH2); nothing is saved."""
    settings = ctx.settings(data, tokens.access_token, oauth=True)
    return pop3.test_account(settings, ctx.policy_then_release())


def create_signed_in(ctx: MailContext, user: User, data: AccountInput, provider_id: int,
                     tokens: oauth.Tokens) -> tuple[MailAccount | None, TestReport]:
    """Test the account with the sign-in's token, then save it with its tokens (encrypted)."""
    report = test_signed_in(ctx, data, tokens)
    if not report.ok:
        return None, report
    first = not user_accounts(user)
    account = MailAccount(
        user_id=user.id, name=data.name, email=data.email.strip().lower(), host=data.host.strip().lower(),
        port=data.port, security=Security(data.security), username=data.username, password_encrypted="",
        leave_on_server=data.leave_on_server, is_default=first, state=AccountState.READY,
        uidl_supported=report.uidl_supported is not False, last_checked_at=utcnow(), last_error="",
        poll_requested=True)
    signin.store_tokens(ctx, account, provider_id, tokens)
    db.session.add(account)
    db.session.commit()
    return account, report


def sign_in_again(ctx: MailContext, account: MailAccount, provider_id: int, tokens: oauth.Tokens) -> TestReport:
    """Test the account with a new sign-in; if it works keep the tokens and poll again at once.

    The fetch ledger is untouched: nothing fetched before comes again.
    """
    data = AccountInput(name=account.name, email=account.email, host=account.host, port=account.port,
                        security=account.security.value, username=account.username, password="")
    account_id = account.id
    report = test_signed_in(ctx, data, tokens)
    if report.ok:
        account = db.session.get(MailAccount, account_id)
        signin.store_tokens(ctx, account, provider_id, tokens)
        account.state, account.last_error, account.last_checked_at = AccountState.READY, "", utcnow()
        account.next_poll_at, account.backoff_s = None, 0
        account.poll_requested = True  # polled at once, and its list shows that poll as it runs
        db.session.commit()
    return report


def password_of(ctx: MailContext, account: MailAccount) -> str:
    """The account's password in clear, for a connection only. Raises SecretError."""
    return ctx.box.decrypt(account.password_encrypted)


def change_password(ctx: MailContext, account: MailAccount, password: str) -> TestReport:
    """Test the new password; only if the server accepts it does it replace the old one.

    Ends the caller's transaction before the test, and writes in a new one after it.
    """
    settings = ctx.settings(account, password)
    report = pop3.test_account(settings, ctx.policy_then_release())
    if report.ok:
        account.password_encrypted = ctx.box.encrypt(password)
        account.state = AccountState.READY
        account.last_error = ""
        account.last_checked_at = utcnow()
        db.session.commit()
    return report


def set_default(account: MailAccount) -> None:
    for other in user_accounts(account.user):
        other.is_default = other.id == account.id
    db.session.commit()


def delete(account: MailAccount) -> None:
    """Delete the account; if it was the default, the oldest remaining one becomes default."""
    user, was_default = account.user, account.is_default
    db.session.delete(account)
    db.session.flush()
    if was_default:
        remaining = user_accounts(user)
        if remaining:
            remaining[0].is_default = True
    db.session.commit()


def record_failure(account: MailAccount, error) -> None:
    """Note a failed connection: a refused password stops fetching until the password changes."""
    account.state = AccountState.AUTH_ERROR if error.kind == "auth" else AccountState.ERROR
    account.last_error = str(error)
    account.last_checked_at = utcnow()
    db.session.commit()
