"""E-mail (SMTP): sign-in links and reviewers' notifications. Nothing in a message beyond a request's title and
links: never its purpose, columns, comments or any record (issue 14)."""

from __future__ import annotations

import smtplib
from dataclasses import dataclass
from email.message import EmailMessage

__all__ = ["Mailer", "MailError"]


class MailError(Exception):
    """A message could not be handed to the SMTP server; the message names the server, never the content."""


@dataclass(frozen=True)
class Mailer:
    """An SMTP server (``VPDC_SMTP_HOST``/``VPDC_SMTP_PORT``, read by the shell) and the sender address.
    ``starttls`` for a server that offers it; credentials, when needed, in ``username``/``password``."""

    host: str
    port: int
    sender: str = "vpdc-portal@localhost"
    starttls: bool = False
    username: str = ""
    password: str = ""
    timeout: float = 10.0

    def send(self, to: str, subject: str, body: str) -> None:
        msg = EmailMessage()
        msg["From"], msg["To"], msg["Subject"] = self.sender, to, subject
        msg.set_content(body)
        try:
            with smtplib.SMTP(self.host, self.port, timeout=self.timeout) as smtp:
                if self.starttls:
                    smtp.starttls()
                if self.username:
                    smtp.login(self.username, self.password)
                smtp.send_message(msg)
        except (OSError, smtplib.SMTPException) as exc:
            raise MailError(f"mail to the SMTP server {self.host}:{self.port} failed ({type(exc).__name__})") from None

    def sign_in_link(self, to: str, url: str) -> None:
        self.send(to, "Your sign-in link / Su enlace para iniciar sesión",
                  f"Sign in to the VPDC portal (valid once, for 15 minutes):\n{url}\n\n"
                  f"Inicie sesión en el portal de VPDC (válido una vez, durante 15 minutos):\n{url}\n\n"
                  "If you did not ask for this, ignore it. / Si no lo pidió, ignórelo.\n")

    def notify(self, to: str, *, title: str, url: str, what: str) -> None:
        """``what``: ``awaiting`` (a request awaits your review), ``changed`` (a decision changed a request),
        ``check`` (an output awaits your check) or ``checked`` (the checking of your output ended)."""
        subject = {"awaiting": "A request awaits your review / Una solicitud espera su revisión",
                   "changed": "A request you take part in changed / Cambió una solicitud en la que participa",
                   "check": "An output awaits your check / Un resultado espera su revisión",
                   "checked": "Your output was checked / Su resultado fue revisado"}[what]
        self.send(to, subject, f"{title}\n{url}\n")
