"""Set OpenCV's own decoder pixel guard before cv2 is first imported.

OpenCV reads OPENCV_IO_MAX_IMAGE_PIXELS once, when cv2 loads (checked with OpenCV 5.0:
setting it afterwards changes nothing), so ``pipeline/__init__.py`` imports this module before
anything that imports cv2. It is a second guard behind the header check in
``pipeline.decoding``, set to the default pixel limit; an environment that sets the variable
keeps its own value (raise it there if you raise Limits.max_pixels). If cv2 was imported
before pipeline, the variable has no effect and the header check guards alone.
"""

from __future__ import annotations

import os

from pipeline.limits import DEFAULT_LIMITS

os.environ.setdefault("OPENCV_IO_MAX_IMAGE_PIXELS", str(DEFAULT_LIMITS.max_pixels))
