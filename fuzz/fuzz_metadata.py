"""Fuzz the metadata parsers that see attacker-controlled text: XMP parsing
(``parse_xmp_fields``), XMP discovery in raw files (``xmp_from_file``), value cleaning
and the JSON size bound (``bound_metadata``). None of them may raise.

    python fuzz/fuzz_metadata.py fuzz/corpus/metadata -max_len=65536
"""

from __future__ import annotations

import json
import sys

import _common
import atheris

with atheris.instrument_imports(include=["antifake"]):
    from antifake.media.metadata import (
        bound_metadata,
        clean_text,
        parse_xmp_fields,
        xmp_from_file,
    )


def test_one_input(data: bytes) -> None:
    fdp = atheris.FuzzedDataProvider(data)
    budget = fdp.ConsumeIntInRange(0, 4096)
    raw = fdp.ConsumeBytes(fdp.remaining_bytes())
    text = raw.decode("utf-8", "surrogateescape")
    fields = parse_xmp_fields(text)
    clean_text(raw)
    clean_text(text, 64)
    path = _common.scratch_file(raw)
    found = xmp_from_file(path, len(raw))
    # Values reaching bound_metadata were decoded with errors="replace" upstream.
    safe = raw.decode("utf-8", "replace")
    md = {"xmp": found or safe, "xmp_fields": fields, "exif": {safe[:32]: raw[:256]},
          "list": [safe, raw, 1.5, float("nan")]}
    bounded = bound_metadata(md, budget)
    size = len(json.dumps(bounded, ensure_ascii=False).encode("utf-8", "surrogatepass"))
    if size > max(budget, 64):
        raise AssertionError(f"bound_metadata kept {size} bytes for a budget of {budget}")


def main() -> None:
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
