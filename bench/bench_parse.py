"""Parse the test corpus N times: mail.inbound.parsing.parse against bare email.message_from_bytes.

Usage: .venv/bin/python bench/bench_parse.py [N]   (N defaults to 5; not part of the tests)
The baseline is the standard parser with policy.default and nothing decoded; the ratio says
how our full parse (headers, bodies, attachments, defects) compares with it.
"""
from __future__ import annotations

import email
import sys
import time
from datetime import datetime, timezone
from email import policy
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mail.inbound.parsing import parse  # noqa: E402  (after the path set-up above)

CORPUS = Path(__file__).resolve().parents[1] / "tests" / "corpus"
SMALL_MESSAGE_BYTES = 8192  # the typical POP3 mail; the corpus also holds 1 MiB monsters


def rate(label: str, messages: list[bytes], rounds: int, work) -> float:
    started = time.perf_counter()
    for _ in range(rounds):
        for raw in messages:
            work(raw)
    per_second = rounds * len(messages) / (time.perf_counter() - started)
    print(f"  {label:<38} {per_second:8.0f} messages/s")
    return per_second


def main(rounds: int) -> None:
    received = datetime.now(timezone.utc)
    everything = [path.read_bytes() for path in sorted(CORPUS.glob("*.eml"))]
    small = [raw for raw in everything if len(raw) <= SMALL_MESSAGE_BYTES]
    for label, messages in (("whole corpus", everything), ("messages <= 8 KiB", small)):
        size = sum(map(len, messages)) / len(messages)
        print(f"{label}: {len(messages)} messages, {size / 1024:.1f} KiB average, x{rounds}")
        baseline = rate("email.message_from_bytes(policy.default)", messages, rounds,
                        lambda raw: email.message_from_bytes(raw, policy=policy.default))
        ours = rate("mail.inbound.parsing.parse", messages, rounds, lambda raw: parse(raw, received))
        print(f"  ratio parse/baseline: {ours / baseline:.2f}\n")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 5)
