"""Plan the sizes a chain makes of an image, without any pixels."""

from __future__ import annotations

from pipeline.chain import Chain
from pipeline.errors import InvalidOperation, Problem
from pipeline.limits import DEFAULT_LIMITS, Limits, megapixels
from pipeline.operation import PlanError, Size
from pipeline.parsing import chain_problem


def plan_sizes(
    chain: Chain,
    width: int,
    height: int,
    *,
    limits: Limits = DEFAULT_LIMITS,
    pointer: str = "/operations",
) -> list[Size]:
    """Return the (width, height) of every output a chain makes of an image, in output order.

    Raises InvalidOperation pointing at the step that cannot apply to the image it gets, or
    that would make an image of more than limits.max_pixels.
    """
    problem = chain_problem(chain.steps, limits, pointer)
    if problem is not None:
        raise InvalidOperation([problem])
    sizes = [(width, height)]
    for index, step in enumerate(chain):
        made: list[Size] = []
        for size in sizes:
            try:
                made.extend(step.operation.sizes(*size, step.params))
            except PlanError as error:
                raise InvalidOperation([Problem(f"{pointer}/{index}", str(error))]) from None
        for made_width, made_height in made:
            if made_width * made_height > limits.max_pixels:
                detail = (
                    f"{step.describe()} would make a {made_width}x{made_height} image"
                    f" ({megapixels(made_width * made_height)} megapixels); the limit is"
                    f" {megapixels(limits.max_pixels)} megapixels"
                )
                raise InvalidOperation([Problem(f"{pointer}/{index}", detail)])
        sizes = made
    return sizes
