"""What the imgserve job commands print: summaries, listings, colour only for terminals."""

from __future__ import annotations

import io
from typing import Any

import pytest

from app.cli_text import listing, summary, url_of, use_colour, without_password, wrote_line


def image(n: int, state: str, outputs: int = 0, error: str | None = None) -> dict[str, Any]:
    """Return an image of a job resource."""
    return {
        "input": f"in/{n}.jpg",
        "output": f"out/{n}.jpg",
        "state": state,
        "outputs": [f"out/{n}_{k}.jpg" for k in range(1, outputs + 1)],
        "error": error,
    }


def job(state: str, images: list[dict[str, Any]]) -> dict[str, Any]:
    """Return a job resource holding images."""
    count = {
        s: sum(1 for i in images if i["state"] == s) for s in ("succeeded", "failed", "cancelled")
    }
    return {
        "id": "2f99592be7624f67b69575b7ae2dce4b",
        "state": state,
        "progress": {"total": len(images), "done": count["succeeded"], "failed": count["failed"],
                     "cancelled": count["cancelled"]},
        "images": images,
        "created_at": "2026-12-02T17:23:47.871302Z",
    }  # fmt: skip


def test_a_summary_counts_images_lists_the_failed_and_says_where_outputs_went() -> None:
    shown = summary(
        job("partially_failed", [image(0, "succeeded", 4), image(1, "failed", error="timed out"),
                                 image(2, "cancelled")])
    )  # fmt: skip
    assert shown == [
        "partially_failed: 1 of 3 images done, 1 failed, 1 cancelled",
        "  in/1.jpg: failed: timed out",
        "wrote 4 outputs to out/",
    ]


def test_a_verbose_summary_lists_every_image() -> None:
    shown = summary(
        job("running", [image(0, "succeeded", 2), image(1, "running"), image(2, "queued")]),
        verbose=True,
    )
    assert shown == [
        "running: 1 of 3 images done, 0 failed, 1 running, 1 queued",
        "  out/0_1.jpg",
        "  out/0_2.jpg",
        "  in/1.jpg: running",
        "  in/2.jpg: queued",
    ]


def test_a_summary_lists_ten_failures_and_counts_the_rest() -> None:
    images = [image(n, "failed", error="bad") for n in range(12)]
    shown = summary(job("failed", images))
    assert shown[0] == "failed: 0 of 12 images done, 12 failed"
    assert shown[1:11] == [f"  in/{n}.jpg: failed: bad" for n in range(10)]
    assert shown[11:] == [
        "  and 2 more failed images (--verbose lists every image)",
        "wrote no outputs",
    ]


@pytest.mark.parametrize(
    ("outputs", "line"),
    [
        ([], "wrote no outputs"),
        (["a.jpg"], "wrote 1 output to ./"),
        (["x/a.jpg", "x/b.jpg", "y/c.jpg"], "wrote 3 outputs: 2 to x/, 1 to y/"),
        (["a/1.jpg", "b/1.jpg", "c/1.jpg", "d/1.jpg", "e/1.jpg", "e/2.jpg"],
         "wrote 6 outputs: 1 to a/, 1 to b/, 1 to c/, 3 to 2 more folders"),
        (["/srv/out/a.png"], "wrote 1 output to /srv/out/"),
    ],
)  # fmt: skip
def test_the_outputs_line_names_each_folder_up_to_three(outputs: list[str], line: str) -> None:
    assert wrote_line(outputs) == line


def test_a_listing_aligns_its_columns_and_colours_only_the_state() -> None:
    jobs = [job("succeeded", [image(0, "succeeded", 1)]),
            job("partially_failed", [image(0, "succeeded", 1), image(1, "failed", error="x")])]  # fmt: skip
    jobs[1]["id"] = "0" * 32
    jobs[1]["created_at"] = "2026-12-02T17:24:00Z"
    assert listing(jobs) == [
        "ID                                STATE             PROGRESS       CREATED",
        "2f99592be7624f67b69575b7ae2dce4b  succeeded         1/1            2026-12-02T17:23:47Z",
        "00000000000000000000000000000000  partially_failed  1/2, 1 failed  2026-12-02T17:24:00Z",
    ]
    coloured = listing(jobs, colour=True)
    assert coloured[0] == listing(jobs)[0]
    assert coloured[1] == listing(jobs)[1].replace("succeeded", "\033[32msucceeded\033[0m")
    assert coloured[2] == listing(jobs)[2].replace(
        "partially_failed", "\033[33mpartially_failed\033[0m"
    )


class Terminal(io.StringIO):
    """A text stream that says it is a terminal."""

    def isatty(self) -> bool:
        """Say this is a terminal."""
        return True


@pytest.mark.parametrize(
    ("stream", "env", "coloured"),
    [
        (Terminal(), {}, True),
        (io.StringIO(), {}, False),
        (Terminal(), {"NO_COLOR": "1"}, False),
        (Terminal(), {"NO_COLOR": ""}, True),
        (Terminal(), {"TERM": "dumb"}, False),
    ],
)
def test_colour_is_for_terminals_and_off_with_no_color_or_a_dumb_terminal(
    monkeypatch: pytest.MonkeyPatch, stream: io.StringIO, env: dict[str, str], coloured: bool
) -> None:
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.setenv("TERM", "xterm")
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert use_colour(stream) is coloured


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("redis://localhost:6379/0", "redis://localhost:6379/0"),
        ("redis://:s3cret@redis:6379/0", "redis://:***@redis:6379/0"),
        ("rediss://app:s3cret@10.0.0.7:6380/1", "rediss://app:***@10.0.0.7:6380/1"),
    ],
)
def test_the_banner_never_shows_a_redis_password(url: str, shown: str) -> None:
    assert without_password(url) == shown


@pytest.mark.parametrize(
    ("host", "url"),
    [
        ("0.0.0.0", "http://localhost:9000"),
        ("::", "http://localhost:9000"),
        ("127.0.0.1", "http://127.0.0.1:9000"),
        ("::1", "http://[::1]:9000"),
    ],
)
def test_the_banner_gives_the_url_a_client_here_reaches(host: str, url: str) -> None:
    assert url_of(host, 9000) == url
