"""A small client of the imgserve API, for the ``imgserve submit`` and ``status`` commands."""

from __future__ import annotations

import os
from typing import Any

import requests
from tqdm import tqdm

FINAL_STATES = frozenset({"succeeded", "failed", "partially_failed", "cancelled"})


class ApiError(Exception):
    """Raised when the API cannot be reached or answers with a problem."""


class Client:
    """Talks to the API at url (default: IMGSERVE_URL, else http://localhost:8888).

    With IMGSERVE_TOKEN set, every request bears it as its API key.
    """

    def __init__(self, url: str | None = None) -> None:
        self.url = (url or os.environ.get("IMGSERVE_URL") or "http://localhost:8888").rstrip("/")
        self.session = requests.Session()
        token = os.environ.get("IMGSERVE_TOKEN")
        if token:  # the API key's token, when the API has keys
            self.session.headers["Authorization"] = f"Bearer {token}"

    def job_url(self, job_id: str) -> str:
        """Return the URL of a job."""
        return f"{self.url}/jobs/{job_id}"

    def submit(self, payload: Any) -> dict[str, Any]:
        """Submit a job; return its resource."""
        return self._call("POST", f"{self.url}/jobs", json=payload)

    def get(self, job_id: str, *, wait: float = 0) -> dict[str, Any]:
        """Return a job, waiting up to wait seconds for a change."""
        params = {"wait": wait} if wait else None
        return self._call("GET", self.job_url(job_id), params=params, timeout=wait + 10)

    def follow(self, job: dict[str, Any]) -> dict[str, Any]:
        """Show a progress bar until the job ends; return its final resource."""
        with tqdm(total=job["progress"]["total"], unit="image", desc=job["id"][:8]) as bar:
            while True:
                settled = sum(job["progress"][k] for k in ("done", "failed", "cancelled"))
                bar.update(settled - bar.n)
                bar.set_postfix_str(job["state"])
                if job["state"] in FINAL_STATES and job["finished_at"]:
                    return job
                job = self.get(job["id"], wait=10)

    def _call(self, method: str, url: str, **kwargs: Any) -> dict[str, Any]:
        """Make a request; return its JSON or raise ApiError with the problem's words."""
        kwargs.setdefault("timeout", 30)
        try:
            response = self.session.request(method, url, **kwargs)
        except requests.RequestException as exc:
            raise ApiError(f"cannot reach imgserve at {self.url}: {exc}") from None
        body: dict[str, Any] = response.json() if response.content else {}
        if response.status_code >= 400:
            lines = [f"{response.status_code} {body.get('title', '')}: {body.get('detail', '')}"]
            lines += [
                f"  {e.get('pointer') or e.get('parameter')}: {e['detail']}"
                for e in body.get("errors") or []
            ]
            raise ApiError("\n".join(lines))
        return body
