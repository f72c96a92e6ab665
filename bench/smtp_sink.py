"""A real SMTP server on 127.0.0.1 for benchmarks: aiosmtpd, writing one line per received message
(its Message-ID) to a file, so the caller can check that each message arrived exactly once.

    python bench/smtp_sink.py --port 2525 --out received.txt

Prints ``ready`` once it listens and stops when its standard input is closed.
"""

from __future__ import annotations

import argparse
import re
import sys

from aiosmtpd.controller import Controller

MESSAGE_ID = re.compile(rb"^Message-ID:\s*(\S+)", re.IGNORECASE | re.MULTILINE)


class Recorder:
    def __init__(self, out) -> None:
        self.out = out

    async def handle_DATA(self, server, session, envelope) -> str:
        match = MESSAGE_ID.search(envelope.content)
        # Written before the 250 goes out: a client that saw it accepted finds its line in the file.
        self.out.write((match.group(1).decode() if match else "(no Message-ID)") + "\n")
        return "250 Message accepted for delivery"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--out", required=True, help="file to append one Message-ID per line to")
    args = parser.parse_args()
    with open(args.out, "a", buffering=1) as out:
        controller = Controller(Recorder(out), hostname="127.0.0.1", port=args.port)
        controller.start()
        print("ready", flush=True)
        sys.stdin.read()
        controller.stop()


if __name__ == "__main__":
    main()
