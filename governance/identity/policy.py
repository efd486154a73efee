"""Identity policy constants, in one place (ASVS 2 and 3 levels noted in docs/security/asvs.md)."""

from datetime import timedelta

#: decisions (approve, deny, conditions, revoke) need a sign-in at most this old
RECENT_SIGN_IN = timedelta(minutes=15)
#: a portal session ends after this long without a request, and after the absolute limit whatever happens
WEB_IDLE = timedelta(minutes=30)
WEB_ABSOLUTE = timedelta(hours=12)
#: a CLI token (``vpdc login``) lives this long
CLI_TOKEN = timedelta(hours=8)
#: an e-mailed sign-in link, and a one-time code the portal gives for ``vpdc login --code``
LINK_TTL = timedelta(minutes=15)
CLI_CODE_TTL = timedelta(minutes=5)
#: at most this many unused links per person at once (a flood of requests sends no flood of mail)
MAX_OPEN_LINKS = 3
#: this many wrong passwords or codes in a row lock the account for LOCKOUT
MAX_FAILURES = 5
LOCKOUT = timedelta(minutes=15)
#: passwords (ASVS 2.1.1, 2.1.2): at least 12 characters, at most 128
PASSWORD_MIN, PASSWORD_MAX = 12, 128
