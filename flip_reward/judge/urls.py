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
# scheme:// then the URL up to the next blank or the next scheme:// (a comma-separated list of URLs, a message)
URL = re.compile(r"\b(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)(?P<rest>(?:(?![A-Za-z][A-Za-z0-9+.-]*://)\S)*)")
AUTHORITY_END = re.compile(r"[/?#]")  # RFC 3986: the authority ends at the first of these after "://"
HTTP_SCHEME = re.compile(r"https?://", re.IGNORECASE)


class JudgeURLError(ValueError):
    """A judge URL that cannot be used as written; its text never shows the URL's credentials."""


class CredentialsSyntaxError(JudgeURLError):
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
    which does not show them, when an unencoded "/", "?" or "#" in a password ends the authority early (it would
    otherwise send the request to a host named after the rest of it; ``unencoded_userinfo``). An "@" after the
    authority belongs to the path or query (RFC 3986) and is kept."""
    if unencoded_userinfo(url.partition("://")[2]):
        raise CredentialsSyntaxError(
            f"judge URL {redact_url(url)}: its user name or password holds a '/', '?' or '#': percent-encode them in "
            "the URL (/ as %2F, ? as %3F, # as %23, @ as %40)"
        )
    parts = urlsplit(url)
    userinfo, at, host = parts.netloc.rpartition("@")
    if not at:
        return url, None
    user, _, password = userinfo.partition(":")
    credentials = BasicCredentials(unquote(user), unquote(password), userinfo)
    return urlunsplit(parts._replace(netloc=host)), credentials


def require_http_scheme(url: str) -> None:
    """JudgeURLError, which does not show any user-info, unless ``url`` starts with http:// or https:// (without a
    scheme nothing in it is read as credentials, and every request error would quote them)."""
    if not HTTP_SCHEME.match(url):
        shown = f"{REDACTED}@{url.rpartition('@')[2]}" if "@" in url else url
        raise JudgeURLError(
            f"judge URL {shown}: it does not start with http:// or https://; write it whole, e.g. "
            "http://127.0.0.1:8000/v1"
        )


def unencoded_userinfo(rest: str) -> bool:
    """Whether ``rest`` (a URL after "://") has an authority that does not parse (a port that is no number, as in
    ``alice:pa/ss@host``, where "pa" would be the port) with an "@" after it: a password holding an unencoded "/",
    "?" or "#"."""
    authority = AUTHORITY_END.split(rest, maxsplit=1)[0]
    return "@" in rest[len(authority) :] and not host_parses(authority.rpartition("@")[2])


def host_parses(host: str) -> bool:
    """Whether ``host`` (``host[:port]``) has a port that is a number, or none."""
    try:
        port = urlsplit(f"//{host}").port
    except ValueError:
        return False
    return port is None or port >= 0


def hidden_userinfo(match: re.Match) -> str:
    """One URL of ``redact_url`` with its user-info hidden: up to the last "@" of its authority, or of the whole URL
    when the authority ends early in an unencoded password (``unencoded_userinfo``)."""
    rest = match["rest"]
    end = rest.rfind("@") if unencoded_userinfo(rest) else AUTHORITY_END.split(rest, maxsplit=1)[0].rfind("@")
    return match["scheme"] + (f"{REDACTED}{rest[end:]}" if end >= 0 else rest)


def redact_url(text: str | None) -> str | None:
    """``text`` as it may be shown: the user-info of every URL in it (one URL, a comma-separated list, a message)
    replaced by ``***`` (``http://***@host/v1``); an "@" in a path or query is shown."""
    return URL.sub(hidden_userinfo, text) if text else text


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
