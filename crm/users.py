"""Users: creation, sign-in with slow-down of password guessing, sessions, deactivation."""
from __future__ import annotations

import hashlib
import ipaddress
import secrets
import time
from dataclasses import dataclass

from sqlalchemy import case, delete, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from werkzeug.security import check_password_hash, generate_password_hash

from models import Role, SignInThrottle, User, UserSession, db, normalise_address

# Failed sign-ins allowed for one address from one client before each further try must wait,
# and failed sign-ins allowed from one client across all addresses (password spraying).
FREE_FAILURES = 5
CLIENT_FREE_FAILURES = 30
# The wait doubles with every failure past the free ones, from this, up to the cap.
FIRST_WAIT_S = 2
MAX_WAIT_S = 15 * 60
# Failures older than this are forgotten.
FAILURE_MEMORY_S = 60 * 60
# One IPv6 customer gets a whole /64: counting its addresses apart would give it 2**64 budgets.
IPV6_CLIENT_PREFIX = 64
ANY_ADDRESS = ""  # the address of a client's budget across addresses
PASSWORD_MIN_LENGTH = 8
# werkzeug's default (scrypt). The test suite swaps in a cheap pbkdf2 to stay fast.
PASSWORD_HASH_METHOD = "scrypt"
SESSION_TOKEN_BYTES = 32

# Checked against when the address is unknown, so that a wrong address costs as much time
# as a wrong password and the answer's timing does not say which addresses exist.
_DUMMY_HASH = generate_password_hash("not a password of anyone")


class SignInError(Exception):
    """A refused sign-in; str() is the sentence shown on the form."""


@dataclass
class Throttled(SignInError):
    wait_s: int
    whole_client: bool = False

    def __str__(self) -> str:
        whom = "from your network" if self.whole_client else "for this address"
        return f"Too many failed sign-ins {whom}. Try again in {self.wait_s} seconds."


def count_users() -> int:
    return db.session.scalar(select(func.count()).select_from(User)) or 0


def get_user(user_id: int) -> User | None:
    return db.session.get(User, user_id)


def find_user(email: str) -> User | None:
    return db.session.scalar(select(User).where(User.email == normalise_address(email)))


def create_user(email: str, name: str, password: str, *, admin: bool = False) -> User:
    """Add a user; raises ValueError with a sentence when the address is taken or input is bad."""
    email = normalise_address(email)
    if find_user(email) is not None:
        raise ValueError(f"A user with the address {email} already exists.")
    if len(password) < PASSWORD_MIN_LENGTH:
        raise ValueError(f"The password must have at least {PASSWORD_MIN_LENGTH} characters.")
    user = User(
        email=email,
        name=name.strip(),
        password_hash=generate_password_hash(password, method=PASSWORD_HASH_METHOD),
        role=Role.ADMIN if admin else Role.STANDARD,
        active=True,
    )
    db.session.add(user)
    db.session.commit()
    return user


def set_password(user: User, password: str) -> None:
    """A new password; every other session of the user ends (a stolen cookie included)."""
    user.password_hash = generate_password_hash(password, method=PASSWORD_HASH_METHOD)
    end_other_sessions(user)


def client_key(remote_addr: str | None) -> str:
    """Who is signing in, as far as slowing down goes: the IPv4 address or the IPv6 /64."""
    try:
        address = ipaddress.ip_address(remote_addr or "")
    except ValueError:
        return (remote_addr or "unknown")[:64]
    if address.version == 4:
        return str(address)
    if address.ipv4_mapped is not None:  # ::ffff:192.0.2.1 is 192.0.2.1
        return str(address.ipv4_mapped)
    return str(ipaddress.ip_network(f"{address}/{IPV6_CLIENT_PREFIX}", strict=False))


def authenticate(email: str, password: str, *, client: str, now_s: float | None = None) -> User:
    """Return the user for these credentials; raises SignInError (or Throttled) otherwise.

    The password is checked only after an attempt has been reserved, in one atomic statement,
    both for this address from this client and for this client across addresses: parallel
    guesses cannot overtake the count, and a guesser elsewhere slows only themselves.
    """
    now_s = time.time() if now_s is None else now_s
    email = normalise_address(email)
    for address, free in ((email, FREE_FAILURES), (ANY_ADDRESS, CLIENT_FREE_FAILURES)):
        if not _reserve_attempt(address, client, free, now_s):
            raise Throttled(wait_s=_wait_left_s(address, client, now_s), whole_client=address == ANY_ADDRESS)
    user = find_user(email)
    good = check_password_hash(user.password_hash if user else _DUMMY_HASH, password)
    if user is not None and good and user.active:
        _forget_attempts(email, client, now_s)
        return user
    if user is not None and good and not user.active:
        raise SignInError("This user has been deactivated. Ask an administrator.")
    raise SignInError("The email address or password is not right.")


def _wait_s(failures: int) -> int:
    """The wait before the next try, after this many failures."""
    if failures < FREE_FAILURES:
        return 0
    return min(FIRST_WAIT_S * 2 ** (failures - FREE_FAILURES), MAX_WAIT_S)


def _reserve_attempt(address: str, client: str, free: int, now_s: float) -> bool:
    """Count one attempt if one is allowed now; False if the caller must wait. One statement
    (INSERT ... ON CONFLICT DO UPDATE ... WHERE ... RETURNING), so it is atomic on both databases."""
    t = SignInThrottle.__table__
    insert = (postgresql if db.engine.dialect.name == "postgresql" else sqlite).insert
    stale = t.c.last_attempt_s < now_s - FAILURE_MEMORY_S
    attempts = case((stale, 1), else_=t.c.attempts + 1)
    statement = insert(t).values(address=address, client=client, attempts=1, last_attempt_s=now_s,
                                 next_try_s=now_s + _wait_after(1, free))
    statement = statement.on_conflict_do_update(
        index_elements=[t.c.address, t.c.client],
        set_={"attempts": attempts, "last_attempt_s": now_s, "next_try_s": now_s + _wait_case(attempts, free)},
        where=or_(stale, t.c.attempts < free, t.c.next_try_s <= now_s)).returning(t.c.attempts)
    reserved = db.session.execute(statement).first() is not None
    db.session.commit()  # before the password check: a parallel attempt must see this one
    return reserved


def _wait_after(failures: int, free: int) -> int:
    return _wait_s(failures - free + FREE_FAILURES)


def _wait_case(attempts, free: int):
    """_wait_after(attempts) as SQL: the doubling waits are few before they reach the cap."""
    steps, n = [], free
    while _wait_after(n, free) < MAX_WAIT_S:
        steps.append((attempts == n, _wait_after(n, free)))
        n += 1
    return case((attempts < free, 0), *steps, else_=MAX_WAIT_S)


def _wait_left_s(address: str, client: str, now_s: float) -> int:
    next_try_s = db.session.scalar(select(SignInThrottle.next_try_s).filter_by(address=address, client=client))
    return max(1, int((next_try_s or now_s) - now_s + 0.999))


def _forget_attempts(email: str, client: str, now_s: float) -> None:
    """A right password: this address and client start afresh; the client's budget gets back
    the attempt reserved for it (only failures should spend it); old rows go."""
    t = SignInThrottle
    db.session.execute(delete(t).where(t.address == email, t.client == client))
    db.session.execute(update(t).where(t.address == ANY_ADDRESS, t.client == client, t.attempts > 0)
                       .values(attempts=t.attempts - 1))
    db.session.execute(delete(t).where(t.last_attempt_s < now_s - FAILURE_MEMORY_S))
    db.session.commit()


def start_session(user: User) -> None:
    """A new server-side session for a sign-in: its token goes into the user's cookies."""
    token = secrets.token_urlsafe(SESSION_TOKEN_BYTES)
    db.session.add(UserSession(token_hash=_token_hash(token), user_id=user.id))
    db.session.commit()
    user.session_token = token


def session_user(token: str) -> User | None:
    """The active user signed in with this session token, or None when that session has ended."""
    row = db.session.get(UserSession, _token_hash(token))
    user = db.session.get(User, row.user_id) if row is not None else None
    if user is None or not user.active:
        return None
    user.session_token = token
    return user


def end_session(user: User) -> None:
    """Sign-out: this session ends here, whatever copies of its cookies exist."""
    if user.session_token:
        db.session.execute(delete(UserSession).where(UserSession.token_hash == _token_hash(user.session_token)))
    db.session.commit()


def end_other_sessions(user: User) -> None:
    """Every session of the user but the current one ends ("Sign out everywhere")."""
    keep = _token_hash(user.session_token) if user.session_token else ""
    db.session.execute(delete(UserSession).where(UserSession.user_id == user.id, UserSession.token_hash != keep))
    db.session.commit()


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def set_active(user: User, active: bool, *, by: User) -> None:
    """Deactivate or reactivate a user; their data stays, their sessions end. Raises ValueError for oneself."""
    if user.id == by.id:
        raise ValueError("You cannot deactivate yourself.")
    user.active = active
    if not active:
        db.session.execute(delete(UserSession).where(UserSession.user_id == user.id))
    db.session.commit()


def all_users() -> list[User]:
    return list(db.session.scalars(select(User).order_by(User.name)))


def active_users() -> list[User]:
    return list(db.session.scalars(select(User).where(User.active.is_(True)).order_by(User.name)))
