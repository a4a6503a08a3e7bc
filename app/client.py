"""A small client of the imgserve API, for the ``imgserve`` job commands.

Every failure is a CommandError of app/cli_errors.py: a problem the API answers is
RequestRefused (its detail and pointers), a service that cannot be reached or answers 503 is
ServiceUnreachable. Nothing here prints.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import requests

from app.cli_errors import CommandError, RequestRefused, ServiceUnreachable, UsageError

DEFAULT_URL = "http://localhost:8888"
FINAL_STATES = frozenset({"succeeded", "failed", "partially_failed", "cancelled"})
TIMEOUT = 30.0
"""Seconds a request may take beyond any long-poll it asks for."""
JOB = frozenset({"id", "state", "progress", "images", "finished_at"})
LISTING = frozenset({"jobs", "next"})
"""Members the CLI reads of a job and of a page of jobs."""
TEXT_SHOWN = 200
"""Characters of a plain-text error answer an error shows at most."""
POLL_WAIT = 10.0
"""Seconds each long-poll of a followed job waits for a change."""


class Client:
    """Talks to the API at url (default: IMGSERVE_URL, else http://localhost:8888).

    With IMGSERVE_TOKEN set, every request bears it as its API key.
    """

    def __init__(self, url: str | None = None) -> None:
        given = url or os.environ.get("IMGSERVE_URL") or DEFAULT_URL
        parts = urlsplit(given)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            where = "--url" if url else "IMGSERVE_URL"
            raise UsageError(f"{where} {given!r} is not an http:// or https:// URL")
        self.url = given.rstrip("/")
        self.session = requests.Session()
        token = os.environ.get("IMGSERVE_TOKEN")
        if token:  # the API key's token, when the API has keys
            self.session.headers["Authorization"] = f"Bearer {token}"

    def job_url(self, job_id: str) -> str:
        """Return the URL of a job."""
        return f"{self.url}/jobs/{job_id}"

    def submit(self, body: bytes) -> dict[str, Any]:
        """Submit a job's JSON as it is; return its resource."""
        headers = {"Content-Type": "application/json"}
        return self._call("POST", f"{self.url}/jobs", JOB, data=body, headers=headers)

    def get(self, job_id: str, *, wait: float = 0) -> dict[str, Any]:
        """Return a job, waiting up to wait seconds for a change."""
        params = {"wait": wait} if wait else None
        return self._call("GET", self.job_url(job_id), JOB, params=params, timeout=wait + TIMEOUT)

    def cancel(self, job_id: str) -> dict[str, Any]:
        """Cancel a job's images that have not started; return the job."""
        return self._call("DELETE", self.job_url(job_id), JOB)

    def list_jobs(self, *, limit: int, offset: int) -> dict[str, Any]:
        """Return a page of recent jobs, newest first."""
        page = {"limit": limit, "offset": offset}
        return self._call("GET", f"{self.url}/jobs", LISTING, params=page)

    def follow(
        self, job: dict[str, Any], on_change: Callable[[dict[str, Any]], None]
    ) -> dict[str, Any]:
        """Long-poll a job until it ends, calling on_change with each version; return the last.

        A server holding as many long-polls as it may (429) is asked again after Retry-After.
        """
        while True:
            on_change(job)
            if job["state"] in FINAL_STATES and job["finished_at"]:
                return job
            try:
                job = self.get(job["id"], wait=POLL_WAIT)
            except RequestRefused as exc:
                if exc.status != 429:
                    raise
                time.sleep(1)

    def _call(
        self, method: str, url: str, members: frozenset[str], **kwargs: Any
    ) -> dict[str, Any]:
        """Make a request; return its JSON object (holding members), or raise what failed."""
        kwargs.setdefault("timeout", TIMEOUT)
        try:
            response = self.session.request(method, url, **kwargs)
        except requests.Timeout:
            raise ServiceUnreachable(
                f"imgserve at {self.url} did not answer within {kwargs['timeout']:g} s"
            ) from None
        except requests.RequestException as exc:
            raise ServiceUnreachable(
                f"cannot reach imgserve at {self.url}: {reason(exc)}; is it running "
                "(`imgserve up`), and is IMGSERVE_URL where it listens?"
            ) from None
        body = _json_object(response)
        if response.status_code >= 400:
            raise _refusal(response, body)
        if body is None or not members <= body.keys():
            raise RequestRefused(
                f"{self.url} did not answer as the imgserve API does: is that where it listens?",
                status=response.status_code,
                detail="",
            )
        return body


def _json_object(response: requests.Response) -> dict[str, Any] | None:
    """Return the response's body as a JSON object, or None when it is not one."""
    try:
        body = response.json()
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


def _refusal(response: requests.Response, body: dict[str, Any] | None) -> CommandError:
    """Return the error for a problem answer: its status, title and detail, then its pointers."""
    status = response.status_code
    if body is not None and "detail" in body:
        title, detail = body.get("title") or response.reason, str(body["detail"])
        lines = tuple(
            f"  {e.get('pointer') or e.get('parameter')}: {e.get('detail')}"
            for e in body.get("errors") or []
            if isinstance(e, dict)
        )
    else:  # waitress's own answers (a body over its read limit) are plain text
        title, lines = response.reason, ()
        words = [line.strip() for line in response.text.splitlines()]
        detail = " ".join(
            w for w in words if w and w != response.reason and not w.startswith("(generated by")
        )
        detail = detail if len(detail) <= TEXT_SHOWN else detail[: TEXT_SHOWN - 3] + "..."
    sentence = f"{status} {title}: {detail}" if detail else f"{status} {title}"
    if status == 503:
        return ServiceUnreachable(sentence, lines)
    return RequestRefused(sentence, lines, status=status, detail=detail)


def reason(exc: BaseException) -> str:
    """Return the system's words for why a connection failed, e.g. "connection refused"."""
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in seen:
        seen.append(current)
        if isinstance(current, OSError) and current.strerror:
            return current.strerror[0].lower() + current.strerror[1:]
        for following in (getattr(current, "reason", None), current.__cause__, current.__context__):
            if isinstance(following, BaseException):
                current = following
                break
        else:
            current = None
    return "the connection failed"
