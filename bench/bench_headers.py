"""Parse one message whose header is made of folded lines of spaces, at 10, 100 and 1,000 KB.

Usage: .venv/bin/python bench/bench_headers.py   (not part of the tests; a few seconds)
Header handling must be linear in a header's size (issue 10.6): any sender can write such a header,
and each poll of the receiving mailbox parses it. Printed: the best of 3 runs per size and shape.
"""
from __future__ import annotations

import sys
import time
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mail.inbound.parsing import parse  # noqa: E402  (after the path set-up above)

SIZES_KB = (10, 100, 1000)
ROUNDS = 3
SHAPES = {
    "Subject": b"Subject: %s",
    "From display name": b"From: %s <ann@example.com>",
    "quoted display name": b'From: "%s" <ann@example.com>',
}


def folded(size: int) -> bytes:
    line = b" " * 70
    return b"x" + b"\r\n".join([line] * (size // 72)) + b" y"


def best_time(raw: bytes) -> float:
    best = float("inf")
    for _ in range(ROUNDS):
        started = time.perf_counter()
        parse(raw, datetime.now(timezone.utc))
        best = min(best, time.perf_counter() - started)
    return best


def main() -> None:
    print("| header | " + " | ".join(f"{kb:,} KB" for kb in SIZES_KB) + " |")
    print("|---|" + "---|" * len(SIZES_KB))
    for name, shape in SHAPES.items():
        times = []
        for kb in SIZES_KB:
            raw = b"Message-ID: <b@example.com>\r\n" + shape.replace(b"%s", folded(kb * 1024)) + b"\r\n\r\nbody\r\n"
            times.append(best_time(raw))
        print(f"| {name} | " + " | ".join(f"{t * 1000:,.1f} ms" for t in times) + " |")


if __name__ == "__main__":
    main()
