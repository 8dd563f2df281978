"""Fuzz ``open_media`` + frame decoding + metadata: bytes -> file -> Media.

Any exception other than :class:`antifake.errors.AntifakeError` is a crash, as is a
result whose ``to_dict()`` is not JSON-serialisable or exceeds the metadata bound.

    python fuzz/fuzz_media.py fuzz/corpus/media -max_len=65536 -timeout=10 -rss_limit_mb=512
"""

from __future__ import annotations

import json
import sys
import warnings

import _common
import atheris

with atheris.instrument_imports(include=["antifake"]):
    from antifake.config import FrameSampling, Limits
    from antifake.errors import AntifakeError
    from antifake.media import open_media

LIMITS = Limits(**_common.FUZZ_LIMITS_KW)  # type: ignore[arg-type]
SAMPLINGS = (
    FrameSampling(mode="all", max_frames=24),
    FrameSampling(mode="fps", fps=4.0, max_frames=8),
    FrameSampling(mode="keyframes", max_frames=8),
)
warnings.simplefilter("ignore")


def test_one_input(data: bytes) -> None:
    if not data:
        return
    sampling = SAMPLINGS[data[-1] % len(SAMPLINGS)]
    path = _common.scratch_file(data)
    try:
        media = open_media(path, LIMITS)
        info = media.info.to_dict()
        encoded = json.dumps(info)
        md_bytes = len(json.dumps(info["metadata"], ensure_ascii=False).encode("utf-8",
                                                                                "surrogatepass"))
        if md_bytes > LIMITS.max_metadata_bytes:
            raise AssertionError(f"metadata {md_bytes} bytes over the bound")
        del encoded
        for frame in media.frames(sampling):
            rgb = frame.rgb
            if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype.name != "uint8":
                raise AssertionError(f"bad frame array {rgb.shape} {rgb.dtype}")
            if rgb.shape[0] * rgb.shape[1] > LIMITS.max_image_pixels:
                raise AssertionError(f"frame {rgb.shape} over the pixel limit")
    except AntifakeError as exc:
        if not exc.message:
            raise AssertionError("AntifakeError without a message") from exc


def main() -> None:
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
