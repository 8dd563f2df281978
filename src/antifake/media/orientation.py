"""Display orientation: the pixels detectors see are the picture as a viewer shows it.

Phone cameras store the sensor's pixels and record how to turn them for display: EXIF
``Orientation`` in photos, a display matrix (the ``tkhd`` matrix of MP4/MOV) in videos.
Browsers, players and FFmpeg's transcoder apply it. antifake applies it too, once, when it
decodes, so that heatmaps and frame pictures line up with what a reviewer sees and the
models judge the scene upright, as their training pictures were (turned on its side, a
real photo's P(AI) moved by up to 0.03 on average: docs/reliability.md). The codes are
EXIF's (1 = as stored, 2-8 the seven other turns and mirrors); a video's rotation is
mapped onto them.

The watermark detector reads marks from the pixels as stored (a mark is embedded before
any orientation tag is set): :func:`undo` gives them back.
"""

from __future__ import annotations

from typing import Any

import numpy as np

EXIF_ORIENTATION_TAG = 0x0112
AS_STORED = 1


def _transpose(a: np.ndarray) -> np.ndarray:
    return np.swapaxes(a, 0, 1)


# EXIF code -> stored pixels to displayed pixels (the transforms of PIL's exif_transpose).
_TO_DISPLAY = {
    2: lambda a: a[:, ::-1],  # mirrored left-right
    3: lambda a: a[::-1, ::-1],  # upside down
    4: lambda a: a[::-1, :],  # mirrored top-bottom
    5: _transpose,  # mirrored along the main diagonal
    6: lambda a: np.rot90(a, k=-1),  # turn 90 degrees clockwise to display
    7: lambda a: np.rot90(a, k=2).swapaxes(0, 1),  # mirrored along the other diagonal
    8: lambda a: np.rot90(a, k=1),  # turn 90 degrees counter-clockwise to display
}
# The inverse transforms: 6 and 8 undo each other, the others undo themselves.
_INVERSE_CODE = {2: 2, 3: 3, 4: 4, 5: 5, 6: 8, 7: 7, 8: 6}


def valid_code(code: Any) -> int:
    """``code`` when it is an EXIF orientation 1-8, else 1 (absent, or a hostile value)."""
    try:
        value = int(code)
    except (TypeError, ValueError, OverflowError):
        return AS_STORED
    return value if 1 <= value <= 8 else AS_STORED


def swaps_sides(code: int) -> bool:
    """Whether displaying turns width into height (codes 5-8)."""
    return code in (5, 6, 7, 8)


def to_display(rgb: np.ndarray, code: int) -> np.ndarray:
    """The stored pixels ``rgb`` (H x W x C) as displayed under orientation ``code``
    (contiguous; the input itself when ``code`` is 1)."""
    turn = _TO_DISPLAY.get(code)
    return rgb if turn is None else np.ascontiguousarray(turn(rgb))


def undo(rgb: np.ndarray, code: int) -> np.ndarray:
    """The displayed pixels ``rgb`` back as stored under orientation ``code``."""
    return to_display(rgb, _INVERSE_CODE.get(code, AS_STORED))


def exif_code(img: Any) -> int:
    """A Pillow image's EXIF orientation code (1 when absent, unreadable or out of range)."""
    try:
        return valid_code(img.getexif().get(EXIF_ORIENTATION_TAG))
    except Exception:  # a damaged EXIF block must not cost the picture its verdict
        return AS_STORED


def frame_code(frame: Any) -> int:
    """The code of a decoded PyAV video frame's display matrix (1 when it has none or
    FFmpeg cannot read it)."""
    try:
        return from_rotation(float(frame.rotation or 0))
    except Exception:
        return AS_STORED


def from_rotation(degrees: float) -> int:
    """The EXIF code of a video's display rotation as FFmpeg reports it (degrees
    counter-clockwise, e.g. PyAV's ``VideoFrame.rotation``; -90 is a portrait phone clip).
    Angles that are not a multiple of 90 degrees are left as stored."""
    turns = round(float(degrees) / 90.0)
    if abs(float(degrees) - 90.0 * turns) > 1.0:
        return AS_STORED
    return {0: AS_STORED, 1: 8, 2: 3, 3: 6}[turns % 4]
