"""antifake: detect AI-generated and AI-edited images and video.

The core pipeline is media decoding (:mod:`antifake.media`) -> detectors
(:mod:`antifake.detectors`) -> fusion (:mod:`antifake.fusion`) -> report
(:mod:`antifake.results`). :class:`antifake.engine.Engine` ties them together; the CLI,
API, worker and SDK are thin shells around it.
"""

from antifake.errors import AntifakeError, ErrorCode

__version__ = "0.1.0"

__all__ = ["AntifakeError", "ErrorCode", "__version__"]
