"""imgserve's image pipeline: declared operations, the operation language, and image I/O.

Pure image work on numpy and OpenCV; it never imports Flask, Celery or pydantic.

    parse_operations(items) -> Chain          the request's operations, validated and normalized
    probe_size(path) / plan_sizes(chain, w, h) sizes from headers alone, for the API
    process_image(input, output, chain)       decode, run, encode and write atomically
    configure_opencv(threads=1)               once per worker process
"""

from __future__ import annotations

# First: OpenCV reads its pixel guard from the environment once, when cv2 is imported.
from pipeline import _env  # noqa: F401
from pipeline.chain import Chain, Step
from pipeline.encoding import EncodeOptions, encode_options_schema, parse_encode_options
from pipeline.errors import (
    ImageDecodeError,
    ImageWriteError,
    InvalidOperation,
    LimitExceeded,
    PipelineError,
    Problem,
    UnsupportedFormat,
)
from pipeline.inputs import probe_size
from pipeline.limits import DEFAULT_LIMITS, Limits
from pipeline.opencv import configure_opencv
from pipeline.operation import Image, Operation, Size
from pipeline.operations import OPERATIONS
from pipeline.outputs import output_format, output_paths
from pipeline.parsing import parse_operations
from pipeline.planning import plan_sizes
from pipeline.processing import process_image
from pipeline.schemas import operation_schemas

__all__ = [
    "DEFAULT_LIMITS",
    "OPERATIONS",
    "Chain",
    "EncodeOptions",
    "Image",
    "ImageDecodeError",
    "ImageWriteError",
    "InvalidOperation",
    "LimitExceeded",
    "Limits",
    "Operation",
    "PipelineError",
    "Problem",
    "Size",
    "Step",
    "UnsupportedFormat",
    "configure_opencv",
    "encode_options_schema",
    "operation_schemas",
    "output_format",
    "output_paths",
    "parse_encode_options",
    "parse_operations",
    "plan_sizes",
    "probe_size",
    "process_image",
]
