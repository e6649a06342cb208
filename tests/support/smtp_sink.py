"""A loopback SMTP server for Warden's mail tests: every message received is written to a file."""

import argparse
import pathlib
import threading
import uuid

from aiosmtpd.controller import Controller


class WriteToDir:
    def __init__(self, directory: pathlib.Path):
        self.directory = directory

    async def handle_DATA(self, server, session, envelope):
        self.directory.mkdir(parents=True, exist_ok=True)
        name = self.directory / f"{uuid.uuid4()}.eml"
        tmp = name.with_suffix(".tmp")
        header = "".join(f"X-Rcpt-To: {r}\r\n" for r in envelope.rcpt_tos)
        tmp.write_bytes(header.encode() + envelope.original_content)
        tmp.rename(name)
        return "250 OK"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--dir", type=pathlib.Path, required=True)
    args = parser.parse_args()
    controller = Controller(WriteToDir(args.dir), hostname="127.0.0.1", port=args.port)
    controller.start()
    try:
        threading.Event().wait()
    finally:
        controller.stop()


if __name__ == "__main__":
    main()
