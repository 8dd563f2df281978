"""Write the seed corpora for the harnesses: one small valid file per supported format and
animation kind (from tests/synth.py via tests/hostile.py), plus XMP/EXIF-bearing files.

    python fuzz/make_seeds.py fuzz/corpus      # -> fuzz/corpus/{media,sniff,metadata}/
"""

from __future__ import annotations

import sys
from pathlib import Path

import _common  # noqa: F401  (sys.path set-up)

SEED_KINDS = (
    "jpeg", "png", "webp", "gif", "bmp", "tiff", "anim_gif", "anim_webp", "anim_png",
    "mp4", "mov", "webm", "mkv", "avi",
)


def write_seeds(root: Path) -> dict[str, int]:
    """Populate ``root/<harness>/``; returns the number of seeds per harness."""
    # (valid files of every kind, XMP/EXIF-bearing files, and hostile-matrix cases)
    import hostile
    import synth

    dirs = {name: root / name for name in ("media", "sniff", "metadata")}
    for d in dirs.values():
        d.mkdir(parents=True, exist_ok=True)
    for kind in SEED_KINDS:
        data = hostile.base_bytes(kind)
        (dirs["media"] / kind).write_bytes(data)
        (dirs["sniff"] / kind).write_bytes(data[:4096])
    xmp = synth.SAMPLE_XMP.encode("utf-8")
    (dirs["media"] / "jpeg_xmp").write_bytes(hostile.jpeg_with_xmp(xmp))
    (dirs["media"] / "png_itxt_xmp").write_bytes(hostile.png_with_itxt_xmp(xmp))
    (dirs["media"] / "jpeg_exif").write_bytes(
        hostile.jpeg_with_exif(hostile.exif_tiff([(0x010F, 2, 4, b"cam\0"),
                                                  (0x0131, 2, 8, b"SynthAI\0")]))
    )
    (dirs["media"] / "tiff_gray").write_bytes(hostile.tiff_gray(8, 8))
    (dirs["media"] / "gif_polyglot").write_bytes(hostile.gif_html_polyglot())
    # The hostile matrix's bombs, hostile metadata and polyglots that fit max_len: they
    # start the fuzzer next to the code paths that handle declared sizes.
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        for case in hostile.cases():
            if case.name.split("/")[0] not in ("bomb", "meta", "polyglot"):
                continue
            if case.slow_timeout_s is not None:
                continue
            d = Path(tmp) / str(len(list(Path(tmp).iterdir())))
            d.mkdir()
            path = case.build(d)
            if path.is_file() and 0 < path.stat().st_size <= 65536:
                seed_name = case.name.replace("/", "_").replace("^", "")
                (dirs["media"] / seed_name).write_bytes(path.read_bytes())
    (dirs["metadata"] / "xmp").write_bytes(b"\x00\x00" + xmp)
    (dirs["metadata"] / "xmp_nested").write_bytes(b"\x00\x00" + hostile.xmp_nested(50))
    (dirs["metadata"] / "xxe").write_bytes(b"\x00\x00" + hostile.XXE_XMP)
    return {name: len(list(d.iterdir())) for name, d in dirs.items()}


if __name__ == "__main__":
    out = Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).parent / "corpus")
    print(write_seeds(out))
