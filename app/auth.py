"""API keys: who a request comes from, checked before every view but /healthz.

Keys come from ``IMGSERVE_API_KEYS`` (``name:token`` pairs, comma-separated) and
``IMGSERVE_API_KEYS_FILE`` (one pair a line, ``#`` comments and blank lines allowed).
With none set imgserve is anonymous: every request is let in and owns no job. With
keys, a request must bear one (``Authorization: Bearer <token>``); its name owns the
jobs it submits. A token is compared with every key's in constant time (a digest of
each, through hmac.compare_digest), so neither its length nor its first wrong byte
shows in the answer's timing; a missing and a wrong token get the same answer.

``/metrics`` takes ``IMGSERVE_METRICS_TOKEN`` when that is set (a scraper then holds
no tenant's key), else any API key; ``IMGSERVE_METRICS_OPEN=1`` leaves it open. Its
counts span every tenant, so with keys it is closed unless the operator opens it.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import re
from dataclasses import dataclass

from flask import Flask, g, request

from app.errors import Unauthorized
from worker.settings import Settings, SettingsError

OPEN_ENDPOINTS = frozenset({"health.healthz"})
MIN_TOKEN_LENGTH = 16
_NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}")


@dataclass(frozen=True)
class ApiKeys:
    """The keys a deployment accepts: name -> digest of its token."""

    digests: dict[str, bytes]
    metrics: bytes | None = None
    metrics_open: bool = False

    @property
    def anonymous(self) -> bool:
        """Return whether no key is set: every request is let in."""
        return not self.digests

    def owner(self, header: str | None) -> str | None:
        """Return the name of the key whose token the Authorization header bears, or None.

        Every key is compared, whichever matches: the time taken does not say which.
        """
        presented = _digest(_bearer(header))
        found = None
        for name, digest in self.digests.items():
            if hmac.compare_digest(digest, presented):
                found = name
        return found

    def lets_in_metrics(self, header: str | None) -> bool:
        """Return whether a request for /metrics may be answered."""
        if self.metrics is not None:
            return hmac.compare_digest(self.metrics, _digest(_bearer(header)))
        return self.metrics_open or self.anonymous or self.owner(header) is not None


def load_keys(settings: Settings) -> ApiKeys:
    """Read the keys the settings name; SettingsError names a malformed entry, never a token."""
    pairs: list[tuple[str, str, str]] = []
    for n, entry in enumerate((settings.api_keys or "").split(","), start=1):
        if entry.strip():
            where = f"IMGSERVE_API_KEYS entry {n}"
            pairs.append((where, *_pair(entry, where)))
    if settings.api_keys_file is not None:
        try:
            text = settings.api_keys_file.read_text("utf-8")
        except OSError as exc:
            raise SettingsError(f"IMGSERVE_API_KEYS_FILE cannot be read: {exc.strerror}") from None
        for n, line in enumerate(text.splitlines(), start=1):
            if line.strip() and not line.strip().startswith("#"):
                where = f"IMGSERVE_API_KEYS_FILE line {n}"
                pairs.append((where, *_pair(line, where)))
    digests: dict[str, bytes] = {}
    for where, name, token in pairs:
        if name in digests:
            raise SettingsError(f"{where}: the key name {name!r} is given twice")
        if _digest(token) in digests.values():
            raise SettingsError(f"{where}: key {name!r} has the token of another key")
        digests[name] = _digest(token)
    metrics = _digest(settings.metrics_token) if settings.metrics_token else None
    return ApiKeys(digests, metrics, settings.metrics_open)


def _pair(entry: str, where: str) -> tuple[str, str]:
    """Split one name:token entry, checking both (the error never shows the token)."""
    name, colon, token = entry.strip().partition(":")
    if not colon or not token:
        raise SettingsError(f"{where}: expected name:token")
    if not _NAME.fullmatch(name):
        raise SettingsError(f"{where}: a key name is 1 to 64 letters, digits, '_', '.' or '-'")
    if len(token) < MIN_TOKEN_LENGTH or any(c.isspace() or c == "," for c in token):
        raise SettingsError(
            f"{where}: the token of key {name!r} must be at least {MIN_TOKEN_LENGTH} "
            "characters, without spaces or commas"
        )
    return name, token


def _bearer(header: str | None) -> str:
    """Return the token of an Authorization header (empty unless it is a Bearer one)."""
    scheme, _, token = (header or "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


def _digest(token: str) -> bytes:
    """Return a token's SHA-256: equal lengths for compare_digest, no token kept in memory."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()


def register_auth(app: Flask, keys: ApiKeys) -> None:
    """Check every request's key before its view; g.owner is its name (None: anonymous)."""

    @app.before_request
    def authenticate() -> None:
        g.owner = None
        # A CORS preflight bears no credentials; Flask answers it with Allow alone.
        if request.endpoint in OPEN_ENDPOINTS or request.method == "OPTIONS":
            return
        header = request.headers.get("Authorization")
        if request.endpoint == "health.metrics":
            if not keys.lets_in_metrics(header):
                raise Unauthorized(UNAUTHORIZED)
            return
        if keys.anonymous:
            return
        g.owner = keys.owner(header)
        if g.owner is None:
            raise Unauthorized(UNAUTHORIZED)


UNAUTHORIZED = "this request needs an Authorization: Bearer header with a valid API key"


def binding_refusal(host: str, settings: Settings, *, allow_anonymous: bool) -> str | None:
    """Return why the API must not listen on host (None: it may).

    Beyond loopback, someone other than this machine's users may reach the port: that
    needs keys, or the operator's word that the network is trusted.
    """
    try:
        keys = load_keys(settings)
    except SettingsError as exc:
        return str(exc)
    if not keys.anonymous or allow_anonymous or settings.allow_anonymous or _loopback(host):
        return None
    return (
        f"refusing to listen on {host} without API keys: set IMGSERVE_API_KEYS (or "
        "IMGSERVE_API_KEYS_FILE), or pass --allow-anonymous (IMGSERVE_ALLOW_ANONYMOUS=1) "
        "on a trusted network"
    )


def _loopback(host: str) -> bool:
    """Return whether host is an address only this machine reaches."""
    try:
        return host == "localhost" or ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
