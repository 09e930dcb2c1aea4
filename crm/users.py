"""Users: creation, sign-in with slow-down of password guessing, deactivation."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select
from werkzeug.security import check_password_hash, generate_password_hash

from models import Role, SignInFailure, User, db, normalise_address, utcnow

# Failed sign-ins allowed for one address before each further try must wait.
FREE_FAILURES = 5
# The wait doubles with every failure past the free ones, from this, up to the cap.
FIRST_WAIT_S = 2
MAX_WAIT_S = 15 * 60
# Failures older than this are forgotten.
FAILURE_MEMORY_S = 60 * 60
PASSWORD_MIN_LENGTH = 8
# werkzeug's default (scrypt). The test suite swaps in a cheap pbkdf2 to stay fast.
PASSWORD_HASH_METHOD = "scrypt"

# Checked against when the address is unknown, so that a wrong address costs as much time
# as a wrong password and the answer's timing does not say which addresses exist.
_DUMMY_HASH = generate_password_hash("not a password of anyone")


class SignInError(Exception):
    """A refused sign-in; str() is the sentence shown on the form."""


@dataclass
class Throttled(SignInError):
    wait_s: int

    def __str__(self) -> str:
        return f"Too many failed sign-ins for this address. Try again in {self.wait_s} seconds."


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
    user.password_hash = generate_password_hash(password, method=PASSWORD_HASH_METHOD)
    db.session.commit()


def _wait_s(failures: int) -> int:
    if failures < FREE_FAILURES:
        return 0
    return min(FIRST_WAIT_S * 2 ** (failures - FREE_FAILURES), MAX_WAIT_S)


def authenticate(email: str, password: str, now: datetime | None = None) -> User:
    """Return the user for these credentials; raises SignInError (or Throttled) otherwise."""
    now = now or utcnow()
    email = normalise_address(email)
    record = db.session.get(SignInFailure, email)
    if record is not None and (now - record.last_failure_at).total_seconds() > FAILURE_MEMORY_S:
        db.session.delete(record)
        db.session.flush()
        record = None
    if record is not None:
        ready_at = record.last_failure_at + timedelta(seconds=_wait_s(record.failures))
        if now < ready_at:
            raise Throttled(wait_s=max(1, int((ready_at - now).total_seconds() + 0.999)))

    user = find_user(email)
    good = check_password_hash(user.password_hash if user else _DUMMY_HASH, password)
    if user is not None and good and user.active:
        if record is not None:
            db.session.delete(record)
        db.session.commit()
        return user

    if record is None:
        record = SignInFailure(email=email, failures=0)
        db.session.add(record)
    record.failures += 1
    record.last_failure_at = now
    db.session.commit()
    if user is not None and good and not user.active:
        raise SignInError("This user has been deactivated. Ask an administrator.")
    raise SignInError("The email address or password is not right.")


def set_active(user: User, active: bool, *, by: User) -> None:
    """Deactivate or reactivate a user; their data stays. Raises ValueError for oneself."""
    if user.id == by.id:
        raise ValueError("You cannot deactivate yourself.")
    user.active = active
    db.session.commit()


def all_users() -> list[User]:
    return list(db.session.scalars(select(User).order_by(User.name)))


def active_users() -> list[User]:
    return list(db.session.scalars(select(User).where(User.active.is_(True)).order_by(User.name)))
