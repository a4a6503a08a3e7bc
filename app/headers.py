"""Headers every answer carries: no sniffing, no caching of jobs, CORS only when asked for.

A job resource is one client's business: ``Cache-Control: no-store`` keeps it out of
shared caches. Browsers on other origins get no CORS headers unless
``IMGSERVE_CORS_ORIGINS`` lists their origin (comma-separated, exact matches).
"""

from __future__ import annotations

from flask import Flask, Response, request

from worker.settings import Settings

CORS_METHODS = "GET, POST, DELETE"
CORS_HEADERS = "Authorization, Content-Type"


def cors_origins(settings: Settings) -> frozenset[str]:
    """Return the origins IMGSERVE_CORS_ORIGINS lets in (none when unset)."""
    return frozenset(
        o.strip().rstrip("/") for o in (settings.cors_origins or "").split(",") if o.strip()
    )


def register_headers(app: Flask, settings: Settings) -> None:
    """Add the security headers, and CORS headers for the listed origins, to every answer."""
    origins = cors_origins(settings)

    @app.after_request
    def secure(response: Response) -> Response:
        response.headers["X-Content-Type-Options"] = "nosniff"
        if request.path.startswith("/jobs") or response.status_code >= 400:
            response.headers["Cache-Control"] = "no-store"
        origin = request.headers.get("Origin")
        if origin is not None and origin in origins:
            response.headers["Access-Control-Allow-Origin"] = origin
            response.headers["Access-Control-Allow-Methods"] = CORS_METHODS
            response.headers["Access-Control-Allow-Headers"] = CORS_HEADERS
            response.headers["Access-Control-Expose-Headers"] = "Location, Retry-After"
            response.headers["Access-Control-Max-Age"] = "600"
        if origins:
            response.vary.add("Origin")
        return response
