"""The demo's local mail sink: an SMTP server on loopback that keeps what it receives and sends
nothing on. scripts/run.sh starts it and the demo users' Send Mail As identities point at it,
so Reply and Send Email really send and nothing leaves the machine.

Each message is written to FOLDER/<n>-<time>.eml and one line per message goes to
FOLDER/received.log and to standard output ("Mail sink received ... ").

Run: .venv/bin/python scripts/mail_sink.py [--host 127.0.0.1] [--port 2525] [--folder instance/demo-sink]
"""
from __future__ import annotations

import argparse
import email
import itertools
import sys
import threading
import time
from email import policy
from pathlib import Path

from aiosmtpd.controller import Controller

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 2525
DEFAULT_FOLDER = Path(__file__).resolve().parent.parent / "instance" / "demo-sink"


class Sink:
    """aiosmtpd handler: keep each message as a file and say so in one line."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.folder.mkdir(parents=True, exist_ok=True)
        self.received: list[tuple[str, list[str], bytes]] = []  # (from, to, bytes), for tests
        self._numbers = itertools.count(len(list(self.folder.glob("*.eml"))) + 1)
        self._lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):
        content = envelope.original_content or envelope.content
        with self._lock:
            n = next(self._numbers)
            path = self.folder / f"{n:05}-{time.strftime('%Y%m%d-%H%M%S')}.eml"
            path.write_bytes(content)
            subject = email.message_from_bytes(content, policy=policy.default).get("subject", "")
            line = (f"{time.strftime('%Y-%m-%d %H:%M:%S')} Mail sink received from {envelope.mail_from} "
                    f"to {', '.join(envelope.rcpt_tos)}: {subject!r} ({len(content)} bytes, {path.name})")
            with (self.folder / "received.log").open("a", encoding="utf-8") as log:
                log.write(line + "\n")
            self.received.append((envelope.mail_from, list(envelope.rcpt_tos), content))
        print(line, flush=True)
        return "250 Kept by the demo's mail sink; nothing was sent on"


def start(host: str = DEFAULT_HOST, port: int = DEFAULT_PORT, folder: Path = DEFAULT_FOLDER) -> tuple[Controller, Sink]:
    """Start the sink in a thread; returns its controller (call .stop()) and handler."""
    sink = Sink(Path(folder))
    controller = Controller(sink, hostname=host, port=port)
    controller.start()
    return controller, sink


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default=DEFAULT_HOST)
    parser.add_argument("--port", type=int, default=DEFAULT_PORT)
    parser.add_argument("--folder", type=Path, default=DEFAULT_FOLDER)
    args = parser.parse_args()
    controller, _ = start(args.host, args.port, args.folder)
    print(f"Mail sink listening on {args.host}:{args.port}; keeping messages in {args.folder}", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        controller.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
