"""What POP3 and SMTP share: a server's settings, and the step-by-step test of them.

A settings test (Test Account, Send Mail As Test) reports each step as it is done; the first
failure ends it, shown on the step that did not happen. Neither touches the database: callers
end their transaction before calling (DESIGN invariant 8).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Callable

from mail import guard
from mail.errors import MailError, Step, TestReport, credential_forms
from mail.guard import GuardPolicy

SECURITY_CHOICES = ("ssl", "starttls", "none")
TIMEOUT_S = 10
RESOLVED = "Name resolved"

Progress = Callable[[str, str], None]
log = logging.getLogger(__name__)


@dataclass
class ServerSettings:
    """How to reach and sign in to one POP3 or SMTP server; the password never shows in a repr."""

    host: str
    port: int
    security: str
    username: str
    password: str = field(repr=False)
    timeout_s: float = TIMEOUT_S
    cafile: str | None = None  # extra CA bundle, trusted on top of the system store
    # password holds an OAuth 2.0 access token, sent with SASL XOAUTH2 (mail.sasl), never as a password
    oauth: bool = False

    @property
    def secrets(self) -> tuple[str, ...]:
        """The password in every form it takes on the wire, for masking server replies."""
        return credential_forms(self.username, self.password)


def run_test(protocol: str, settings: ServerSettings, policy: GuardPolicy, steps: list[str],
             session: Callable[[Progress, TestReport], None]) -> TestReport:
    """Check the destination, then run `session(progress, report)`, which connects and reports
    each step done; `steps` are the labels expected after "Name resolved", in order.

    A refused destination is reported without what its name resolves to (that would tell a
    stranger about the private network). Raises only ValueError for an unknown security setting.
    """
    if settings.security not in SECURITY_CHOICES:
        raise ValueError(f"security must be one of {SECURITY_CHOICES}")
    report = TestReport(unencrypted=settings.security == "none")
    expected = [RESOLVED, *steps]

    def progress(label: str, detail: str) -> None:
        report.steps.append(Step(label, True, detail))

    try:
        infos = guard.check_destination(settings.host, settings.port, policy)
        progress(RESOLVED, ", ".join(dict.fromkeys(info[4][0] for info in infos)))
        session(progress, report)
        report.ok = True
    except MailError as exc:
        done = {step.label for step in report.steps}
        failed = next((label for label in expected if label not in done), expected[-1])
        report.steps.append(Step(failed, False, str(exc)))
        report.error = exc
    log.info("%s test of %s on %s port %d: %s", protocol, settings.username, settings.host, settings.port,
             "ok" if report.ok else report.error.kind if report.error else "failed")
    return report
