"""Fuzz format sniffing and the container size checks (``sniff_bytes``,
``check_container_size``: RIFF, ISO-BMFF box walk and MP4/MOV sample counts, EBML
header/Segment).

    python fuzz/fuzz_sniff.py fuzz/corpus/sniff -max_len=8192
"""

from __future__ import annotations

import contextlib
import sys

import _common
import atheris

with atheris.instrument_imports(include=["antifake"]):
    from antifake.config import Limits
    from antifake.errors import AntifakeError
    from antifake.media.sniff import MIME_TYPES, check_container_size, sniff_bytes


LIMITS = Limits(**_common.FUZZ_LIMITS_KW)  # type: ignore[arg-type]


def test_one_input(data: bytes) -> None:
    try:
        sniffed = sniff_bytes(data)
    except AntifakeError:
        return
    if sniffed.format not in MIME_TYPES:
        raise AssertionError(f"unknown format {sniffed.format!r}")
    path = _common.scratch_file(data)
    with contextlib.suppress(AntifakeError):
        check_container_size(path, sniffed, len(data), LIMITS)


def main() -> None:
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
