"""Test helpers for identity and the portal: a real SMTP server on loopback (aiosmtpd) that keeps what it gets."""

from __future__ import annotations

import socket
import threading
from email import message_from_bytes
from email.policy import default


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Sink:
    """``with Sink() as sink:`` an SMTP server on 127.0.0.1:<sink.port>; ``sink.wait(n)`` the first n messages as
    {"to": [...], "subject": str, "body": str}."""

    def __init__(self):
        self.messages: list[dict] = []
        self._cond = threading.Condition()
        self.port = free_port()

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's handler protocol
        msg = message_from_bytes(envelope.content, policy=default)
        with self._cond:
            self.messages.append({"to": list(envelope.rcpt_tos), "subject": str(msg["Subject"]),
                                  "body": msg.get_body(("plain",)).get_content()})
            self._cond.notify_all()
        return "250 OK"

    def wait(self, n: int, timeout: float = 20.0) -> list[dict]:
        with self._cond:
            self._cond.wait_for(lambda: len(self.messages) >= n, timeout=timeout)
            return list(self.messages[:n])

    def __enter__(self) -> "Sink":
        from aiosmtpd.controller import Controller

        self._controller = Controller(self, hostname="127.0.0.1", port=self.port)
        self._controller.start()
        return self

    def __exit__(self, *exc) -> None:
        self._controller.stop()
