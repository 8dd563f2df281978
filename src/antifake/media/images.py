"""Still and animated images with Pillow.

HEIC/HEIF pictures are read through ``pi-heif`` (libheif, decode only), which applies the
picture's own rotation and mirror properties while decoding and resets the EXIF
orientation it carries to 1, so they arrive upright like every other still. AVIF is read
by Pillow's own plugin, which reports those properties as an EXIF orientation instead
(applied by :mod:`antifake.media.orientation`, as for JPEG).

Stills are fully decoded once at open (so truncation fails there) and kept in memory.
Animated GIF/WebP/APNG are treated as video: every frame is decoded at open to validate
it and read its duration, and :meth:`AnimatedImageMedia.frames` decodes again as a stream,
applying the same :class:`~antifake.media.video.FrameSelector` as real videos.
"""

from __future__ import annotations

import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageFile

from antifake.config import FrameSampling, Limits
from antifake.errors import AntifakeError, ErrorCode
from antifake.media import orientation
from antifake.media.metadata import extract_image_metadata
from antifake.media.types import Frame, MediaInfo
from antifake.media.video import FileFacts, FrameSelector

# Pillow plugin per sniffed format: only that plugin may claim the file.
_PIL_FORMATS = {
    "jpeg": "JPEG",
    "png": "PNG",
    "webp": "WEBP",
    "gif": "GIF",
    "bmp": "BMP",
    "tiff": "TIFF",
    "heif": "HEIF",  # pi-heif's plugin (libheif + libde265), registered on first use
    "avif": "AVIF",  # Pillow's own plugin (libavif)
}
_DEFAULT_FRAME_MS = 100  # what browsers show for a missing / near-zero GIF frame delay


def _too_large(width: int, height: int, limit: int, which: str) -> AntifakeError:
    return AntifakeError(
        ErrorCode.TOO_LARGE,
        f"image {width}x{height} = {width * height} pixels exceeds {limit} (limit {which})",
    )


def _corrupt(fmt: str, exc: BaseException) -> AntifakeError:
    return AntifakeError(
        ErrorCode.CORRUPT_MEDIA,
        f"cannot decode {fmt} image: {type(exc).__name__}: {str(exc)[:300]}",
    )


# warnings.catch_warnings swaps the process-wide filter list: two overlapping uses on
# different threads (the engine runs detectors concurrently, each calling frames()) could
# leave "ignore" installed for good. Pillow work under the guard is serialised instead.
_PILLOW_LOCK = threading.RLock()


@contextmanager
def _pillow_guard(fmt: str) -> Iterator[None]:
    """Map Pillow failures to stable errors; never let a warning or traceback escape.

    Our own pixel limit is checked from the header before decoding; Pillow's
    decompression-bomb check (its ``MAX_IMAGE_PIXELS``) stays on as a second line and is
    reported as ``too_large`` too.
    """
    # Truncated images must fail, not be silently padded with grey.
    ImageFile.LOAD_TRUNCATED_IMAGES = False
    with _PILLOW_LOCK, warnings.catch_warnings():
        # DecompressionBombWarning, "Corrupt EXIF data" etc.: hostile input is expected
        # here, and the failures that matter are raised as AntifakeError below.
        warnings.simplefilter("ignore")
        try:
            yield
        except AntifakeError:
            raise
        except Image.DecompressionBombError as exc:
            raise AntifakeError(
                ErrorCode.TOO_LARGE,
                f"{fmt} image declares too many pixels (decompression bomb): {exc}",
            ) from exc
        except MemoryError as exc:
            raise AntifakeError(ErrorCode.TOO_LARGE, f"{fmt} image too large to decode") from exc
        except Exception as exc:  # OSError, SyntaxError, ValueError, EOFError, struct.error...
            raise _corrupt(fmt, exc) from exc


def to_rgb_array(img: Image.Image) -> np.ndarray:
    """Any Pillow mode -> HxWx3 uint8 RGB (16-bit and float modes are rescaled)."""
    if img.mode in ("I", "I;16", "I;16B", "I;16L", "I;16N", "F"):
        arr = np.asarray(img, dtype=np.float64)
        lo, hi = float(arr.min()), float(arr.max())
        scaled = (arr - lo) * (255.0 / (hi - lo)) if hi > lo else np.zeros_like(arr)
        gray = np.clip(scaled + 0.5, 0, 255).astype(np.uint8)
        return np.ascontiguousarray(np.repeat(gray[:, :, None], 3, axis=2))
    if img.mode != "RGB":
        img = img.convert("RGB")
    return np.ascontiguousarray(np.asarray(img, dtype=np.uint8))


class ImageMedia:
    """A decoded still image; ``frames()`` yields it once."""

    def __init__(self, info: MediaInfo, image: Image.Image) -> None:
        self.info = info
        self._image = image
        self._rgb: np.ndarray | None = None
        self._rgb_lock = threading.Lock()  # detectors on several threads ask at once

    @property
    def path(self) -> Path:
        return self.info.path

    @property
    def image(self) -> Image.Image:
        """The decoded Pillow image (original mode, as stored: ``frames()`` and
        ``preview()`` apply ``info.orientation``, this does not)."""
        return self._image

    def frames(self, sampling: Any = None) -> Iterator[Frame]:
        """Yield the image as one frame (index 0, time 0), turned as displayed (EXIF
        orientation, :mod:`antifake.media.orientation`); ``sampling`` is ignored.

        The RGB array is converted once and shared by every caller (read-only): each
        detector asks for it, and a fresh copy per detector cost a conversion and, for a
        large image, many page faults each time.
        """
        with self._rgb_lock:
            if self._rgb is None:
                with _pillow_guard(self.info.format):
                    rgb = orientation.to_display(to_rgb_array(self._image),
                                                 self.info.orientation)
                rgb.flags.writeable = False
                self._rgb = rgb
        yield Frame(index=0, time_s=0.0, rgb=self._rgb, keyframe=True)

    def preview(self, max_side: int) -> np.ndarray:
        """The image as RGB with its long side <= ``max_side``, reduced by block means
        *before* the RGB conversion, so a 49 Mpx picture costs a few MB, not the ~300 MB of
        full-size RGB copies (pictures drawn by the service, issue 11 item 4)."""
        img = self._image
        factor = max(1, max(img.size) // max(1, max_side))  # floor: never below max_side
        with _pillow_guard(self.info.format):
            if factor > 1:
                try:
                    img = img.reduce(factor)
                except (ValueError, NotImplementedError):  # modes reduce() does not take
                    img = img.convert("RGB").reduce(factor)
            return orientation.to_display(to_rgb_array(img), self.info.orientation)


class AnimatedImageMedia:
    """An animated GIF/WebP/APNG, decoded as a video stream."""

    def __init__(self, info: MediaInfo, limits: Limits, frame_times: list[float]) -> None:
        self.info = info
        self._limits = limits
        self._frame_times = frame_times  # start time of each frame, seconds

    @property
    def path(self) -> Path:
        return self.info.path

    def frames(self, sampling: Any = None) -> Iterator[Frame]:
        """Yield the frames chosen by ``sampling``; every frame counts as a keyframe
        (each is a complete picture once composited)."""
        sampling = sampling or FrameSampling()
        info = self.info
        selector = FrameSelector(sampling, info.duration_s, info.frame_count, info.fps)
        fmt = info.format
        with _pillow_guard(fmt):
            img = Image.open(info.path, formats=[_PIL_FORMATS[fmt]])
        try:  # closes the file also when the consumer stops iterating early
            for index, time_s in enumerate(self._frame_times):
                if selector.done:
                    break
                if not selector.want(time_s):
                    continue
                with _pillow_guard(fmt):
                    img.seek(index)
                    img.load()
                    rgb = to_rgb_array(img)
                yield Frame(index=index, time_s=time_s, rgb=rgb, keyframe=True)
        finally:
            img.close()


def _frame_ms(fmt: str, value: Any) -> float:
    try:
        ms = float(value)
    except (TypeError, ValueError):
        return _DEFAULT_FRAME_MS
    if not ms > 0 or (fmt == "gif" and ms <= 10):
        return _DEFAULT_FRAME_MS
    return min(ms, 3_600_000.0)


def jpeg_scan_count(path: Path, stop_after: int | None = None) -> int:
    """Start-of-scan markers (FF DA) in a JPEG file, counted without decoding. Byte
    stuffing keeps FF DA out of entropy-coded data, so this is the scan count (plus any
    in an embedded thumbnail); counting stops once past ``stop_after``."""
    count, tail = 0, b""
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            data = tail + chunk
            count += data.count(b"\xff\xda")
            # A trailing FF may start a marker that ends in the next chunk.
            tail = b"\xff" if data.endswith(b"\xff") else b""
            if stop_after is not None and count > stop_after:
                break
    return count


def tiff_ifd_loop(path: Path, max_ifds: int = 100_000) -> bool:
    """True when the chain of a classic TIFF's image directories (pages) comes back to a
    directory already visited. Pillow stops at the repeat and reports the pages seen so
    far, so a 238-byte file of two directories pointing at each other became a two-frame
    "video" with a verdict (issue 11 item 14); it is junk, not media."""
    import struct

    with path.open("rb") as fh:
        head = fh.read(8)
        if len(head) < 8 or head[:2] not in (b"II", b"MM"):
            return False
        order = "<" if head[:2] == b"II" else ">"
        if struct.unpack(order + "H", head[2:4])[0] != 42:
            return False  # BigTIFF (43) or not TIFF: Pillow's own checks apply
        offset = struct.unpack(order + "I", head[4:8])[0]
        seen: set[int] = set()
        while offset and len(seen) < max_ifds:
            if offset in seen:
                return True
            seen.add(offset)
            fh.seek(offset)
            raw = fh.read(2)
            if len(raw) < 2:
                return False
            count = struct.unpack(order + "H", raw)[0]
            fh.seek(offset + 2 + 12 * count)
            raw = fh.read(4)
            if len(raw) < 4:
                return False
            offset = struct.unpack(order + "I", raw)[0]
    return False


_heif_registered = False


def _register_heif() -> None:
    """Register pi-heif's HEIF plugin with Pillow (once); ``unsupported_media`` when the
    package is missing."""
    global _heif_registered
    if _heif_registered:
        return
    try:
        import pi_heif
    except ImportError as exc:
        raise AntifakeError(
            ErrorCode.UNSUPPORTED_MEDIA,
            "HEIC/HEIF pictures need the pi-heif package (pip install pi-heif==1.4.0)",
        ) from exc
    with _PILLOW_LOCK:
        # Thumbnails, depth maps and auxiliary images are not analysed: skip decoding them.
        pi_heif.register_heif_opener(thumbnails=False, depth_images=False, aux_images=False)
        _heif_registered = True


def open_image(facts: FileFacts, limits: Limits) -> ImageMedia | AnimatedImageMedia:
    """Open, validate and decode an image file; animated ones become video media."""
    fmt = facts.format
    if fmt == "jpeg":
        scans = jpeg_scan_count(facts.path, stop_after=limits.max_jpeg_scans)
        if scans > limits.max_jpeg_scans:
            raise AntifakeError(
                ErrorCode.TOO_LARGE,
                f"JPEG has more than {limits.max_jpeg_scans} scans (limit max_jpeg_scans)")
    if fmt == "tiff" and tiff_ifd_loop(facts.path):
        raise AntifakeError(ErrorCode.CORRUPT_MEDIA,
                            "TIFF pages form a loop (a page points back to an earlier one)")
    if fmt == "heif":
        _register_heif()
    with _pillow_guard(fmt):
        img = Image.open(facts.path, formats=[_PIL_FORMATS[fmt]])
    try:
        return _validate_image(img, facts, limits)
    except BaseException:
        img.close()  # Pillow leaves the file open when decoding fails
        raise


def _validate_image(
    img: Image.Image, facts: FileFacts, limits: Limits
) -> ImageMedia | AnimatedImageMedia:
    fmt = facts.format
    with _pillow_guard(fmt):
        width, height = img.size
        # A HEIF file with several top-level pictures (a burst, a bracketed series) is
        # judged on its primary picture, not played as a video.
        animated = fmt != "heif" and bool(getattr(img, "is_animated", False))
        pixel_limit = limits.max_video_pixels if animated else limits.max_image_pixels
        which = "max_video_pixels" if animated else "max_image_pixels"
        if width * height > pixel_limit:
            raise _too_large(width, height, pixel_limit, which)
        img.load()
        metadata = extract_image_metadata(img)
        if not animated:
            code = orientation.exif_code(img)
            if fmt in ("gif", "tiff", "webp") or getattr(img, "fp", None) is not None:
                # Multi-frame-capable plugins (GIF, TIFF, WebP) keep the file open after
                # load(); keep a detached copy of the pixels and release the file.
                detached = img.copy()
                img.close()
                img = detached
            info = MediaInfo(
                path=facts.path,
                media_type="image",
                format=fmt,
                mime=facts.mime,
                size_bytes=facts.size_bytes,
                sha256=facts.sha256,
                width=height if orientation.swaps_sides(code) else width,
                height=width if orientation.swaps_sides(code) else height,
                frame_count=1,
                codec=fmt,
                metadata=metadata,
                orientation=code,
            )
            return ImageMedia(info, img)
        try:
            declared = int(getattr(img, "n_frames", 1))
            if declared > limits.max_animation_frames:
                raise AntifakeError(
                    ErrorCode.TOO_LARGE,
                    f"animation declares {declared} frames, over {limits.max_animation_frames} "
                    "(limit max_animation_frames)",
                )
            if declared > limits.max_frames:
                raise AntifakeError(
                    ErrorCode.TOO_LARGE,
                    f"animation declares {declared} frames, over {limits.max_frames} "
                    "(limit max_frames)",
                )
            frame_times: list[float] = []
            elapsed_ms = 0.0
            for index in range(declared):
                img.seek(index)
                # Checked before load(): a GIF frame placed outside the logical screen makes
                # seek() grow the canvas, and load() would allocate all of it (an 8 KiB GIF
                # with a 48x32 screen asked for 1152x71725 RGBA, ~840 MiB, found by fuzzing).
                if img.size[0] * img.size[1] > pixel_limit:
                    raise _too_large(img.size[0], img.size[1], pixel_limit, which)
                img.load()  # validates every frame now: truncation fails at open
                frame_times.append(elapsed_ms / 1000.0)
                elapsed_ms += _frame_ms(fmt, img.info.get("duration"))
                if elapsed_ms / 1000.0 > limits.max_duration_s:
                    raise AntifakeError(
                        ErrorCode.TOO_LARGE,
                        f"animation runs longer than {limits.max_duration_s:.0f} s "
                        "(limit max_duration_s)",
                    )
        finally:
            img.close()
    duration_s = elapsed_ms / 1000.0
    info = MediaInfo(
        path=facts.path,
        media_type="video",
        format=fmt,
        mime=facts.mime,
        size_bytes=facts.size_bytes,
        sha256=facts.sha256,
        width=width,
        height=height,
        frame_count=len(frame_times),
        fps=len(frame_times) / duration_s if duration_s > 0 else None,
        duration_s=duration_s,
        codec=fmt,
        animated=True,
        metadata=metadata,
    )
    return AnimatedImageMedia(info, limits, frame_times)
