"""antifake: detect AI-generated and AI-edited images and video.

The core pipeline is media decoding (:mod:`antifake.media`) -> detectors
(:mod:`antifake.detectors`) -> fusion (:mod:`antifake.fusion`) -> report
(:mod:`antifake.results`). :class:`antifake.engine.Engine` ties them together; the CLI,
API, worker and SDK are thin shells around it.
"""

from antifake.errors import AntifakeError, ErrorCode

__version__ = "0.1.0"

__all__ = ["AntifakeError", "AsyncClient", "Client", "ErrorCode", "__version__"]

# The SDK (httpx) is imported on first use only, so `import antifake` stays cheap.
_LAZY = {"Client": "antifake.sdk", "AsyncClient": "antifake.sdk"}


def __getattr__(name: str) -> object:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'antifake' has no attribute {name!r}")
