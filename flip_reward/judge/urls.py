"""Credentials in a judge URL (``http://user:pass@host/v1``): split off to be sent as HTTP basic auth, and hidden
wherever the URL is shown (``redact_url``: descriptions, errors, logs, /health), so that they never leave the
process except in the Authorization header of a judge request.
"""

from __future__ import annotations

import base64
import dataclasses
import re
from dataclasses import dataclass, field
from urllib.parse import unquote, urlsplit, urlunsplit

REDACTED = "***"
# scheme:// then everything up to the last "@" before the next blank or URL: a password may hold "@", and one that
# holds an unencoded "/", "?" or "#" (which urlsplit would read as the path) is hidden whole too. A URL with "@" in
# its path or query is hidden a little more than needed, never less.
USERINFO = re.compile(r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.-]*://)(?:(?!://)\S)*@")
UNENCODED_IN_USERINFO = "/?#"


class CredentialsSyntaxError(ValueError):
    """A URL whose user name or password holds a "/", "?" or "#" that is not percent-encoded."""


@dataclass(frozen=True)
class BasicCredentials:
    """The user and password of a URL's user-info, percent-decoded (a URL with only a user has password "")."""

    user: str = field(repr=False)
    password: str = field(repr=False)
    userinfo: str = field(repr=False)  # as written in the URL, to hide it in texts that quote the URL

    def header(self) -> str:
        """The value of the ``Authorization`` header (RFC 7617)."""
        return "Basic " + base64.b64encode(f"{self.user}:{self.password}".encode()).decode("ascii")

    def secrets(self) -> tuple[str, ...]:
        """Every form in which these credentials could show up in a text: the user-info as written, decoded, and
        the password alone (the user alone when there is no password: then it is the secret, e.g. a token)."""
        forms = (self.userinfo, f"{self.user}:{self.password}", self.password or self.user)
        return tuple(secret for secret in forms if secret and secret != ":")


def split_credentials(url: str) -> tuple[str, BasicCredentials | None]:
    """``url`` without its user-info, and the credentials it held (None when it held none); CredentialsSyntaxError,
    which does not show them, when an "@" follows a "/", "?" or "#" (an unencoded one in a password would otherwise
    send the request to a host named after the rest of it)."""
    userinfo, at, _ = url.partition("://")[2].rpartition("@")
    if at and any(character in userinfo for character in UNENCODED_IN_USERINFO):
        raise CredentialsSyntaxError(
            f"judge URL {redact_url(url)}: its user name or password holds a '/', '?' or '#' (or its path an '@'): "
            "percent-encode them in the URL (/ as %2F, ? as %3F, # as %23, @ as %40)"
        )
    parts = urlsplit(url)
    userinfo, at, host = parts.netloc.rpartition("@")
    if not at:
        return url, None
    user, _, password = userinfo.partition(":")
    credentials = BasicCredentials(unquote(user), unquote(password), userinfo)
    return urlunsplit(parts._replace(netloc=host)), credentials


def redact_url(text: str | None) -> str | None:
    """``text`` as it may be shown: the user-info of every URL in it (one URL, a comma-separated list, a message)
    replaced by ``***`` (``http://***@host/v1``)."""
    return USERINFO.sub(rf"\g<scheme>{REDACTED}@", text) if text else text


def redact(text: str, *secrets: str | None) -> str:
    """``text`` with every occurrence of each of ``secrets`` (keys, passwords) replaced by ``***``, longest first."""
    for secret in sorted(filter(None, secrets), key=len, reverse=True):
        text = text.replace(secret, REDACTED)
    return text


def redacted_repr(instance: object) -> str:
    """The ``repr`` of a dataclass ``instance`` as the dataclass writes it, with every URL's user-info hidden: the
    ``__repr__`` of the settings that hold a judge URL."""
    fields = [item.name for item in dataclasses.fields(instance) if item.repr]
    shown = ", ".join(f"{name}={getattr(instance, name)!r}" for name in fields)
    return redact_url(f"{type(instance).__name__}({shown})")
