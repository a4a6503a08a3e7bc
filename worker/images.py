"""Running one image of a job: resolve its paths in the sandbox, run the pipeline, time it.

A worker process keeps what it learnt of a job (``PreparedJob``) while it runs the
job's images: the spec, read once from the store; the parsed chain; and one
``InRoot`` for each storage root, whose folder cache serves all of the job's paths.
"""

from __future__ import annotations

import logging
from pathlib import Path

from celery.exceptions import SoftTimeLimitExceeded

import pipeline
from worker.jobs import Job
from worker.paths import InRoot, UnsafePath, output_root
from worker.settings import Settings

log = logging.getLogger(__name__)

Timings = list[tuple[str, float]]
"""Each step of an image's processing and its seconds."""


class PreparedJob:
    """A job as a worker process runs it: its spec, chain and the roots its paths lie in."""

    def __init__(self, job: Job, settings: Settings) -> None:
        self.job = job
        self.outputs = output_root(settings)
        self.inputs = (  # one root: one folder cache for both
            self.outputs if settings.outputs == settings.inputs else InRoot(settings.inputs)
        )
        self._parsed: tuple[pipeline.Chain, pipeline.EncodeOptions] | None = None

    def parsed(self, limits: pipeline.Limits) -> tuple[pipeline.Chain, pipeline.EncodeOptions]:
        """Return the job's chain and encode options, parsed on first use.

        Parsed when an image runs, not before, so that a chain this worker's limits refuse
        is each image's error.
        """
        if self._parsed is None:
            chain = pipeline.parse_operations(self.job.operations, limits=limits)
            self._parsed = chain, pipeline.parse_encode_options(self.job.encode)
        return self._parsed

    def source(self, index: int) -> Path:
        """Resolve an image's input inside its root, as a pipeline error if it is not."""
        try:
            return self.inputs.resolve(self.job.images[index].input)
        except UnsafePath as exc:
            raise pipeline.PipelineError(f"the input path {exc}") from None

    def target(self, index: int) -> Path:
        """Resolve an image's output where it may be written now, as a pipeline error if not.

        The API checked the same at submission; a symlink or a file may have appeared since.
        """
        image = self.job.images[index]
        try:
            for output in image.outputs:  # each file it writes, which may not exist yet
                self.outputs.writable(output, overwrite=self.job.overwrite)
            return self.outputs.writable(image.output, overwrite=True)
        except UnsafePath as exc:
            raise pipeline.PipelineError(f"the output path {exc}") from None


def run_image(
    prepared: PreparedJob, index: int, settings: Settings, *, retry: bool = False
) -> tuple[str | None, Timings]:
    """Process one image; return its error (None on success) and each step's time.

    retry: an earlier attempt of this image may have been killed halfway through its write.
    """
    timings: Timings = []
    try:
        source = prepared.source(index)
        target = prepared.target(index)
        chain, encode = prepared.parsed(settings.limits)
        pipeline.process_image(
            source,
            target,
            chain,
            encode=encode,
            limits=settings.limits,
            on_step=lambda op, seconds: timings.append((op, seconds)),
            retry=retry,
        )
    except pipeline.PipelineError as exc:
        return exc.detail, timings
    except SoftTimeLimitExceeded:
        return soft_limit_error(settings), timings
    except Exception as exc:
        log.exception("image %d of job %s failed unexpectedly", index, prepared.job.id)
        return f"internal error: {type(exc).__name__}", timings
    return None, timings


def soft_limit_error(settings: Settings) -> str:
    """Return the error of an image stopped at the soft time limit."""
    return f"timed out: stopped at the soft time limit of {settings.soft_time_limit} s"
