"""Metadata extraction: EXIF, XMP, PNG text chunks, IPTC, container/stream tags.

Everything here reads attacker-controlled values, so each tag is converted on its own
inside a ``try``: one hostile tag is skipped, never fatal. The result contains only
JSON types (str/int/float/bool/list/dict) and its serialised size is bounded by
``Limits.max_metadata_bytes``.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from PIL import ExifTags, Image, IptcImagePlugin

log = logging.getLogger(__name__)

MAX_VALUE_CHARS = 2048  # one EXIF/IPTC/tag value
MAX_XMP_CHARS = 1024 * 1024  # raw XMP packet kept
_XMP_SCAN_BYTES = 4 * 1024 * 1024  # raw scan of a file's head and tail for an XMP packet

# Conventional prefixes, used when the packet itself does not declare one.
_XMP_PREFIXES: dict[str, str] = {
    "http://ns.adobe.com/xap/1.0/": "xmp",
    "http://ns.adobe.com/xap/1.0/mm/": "xmpMM",
    "http://ns.adobe.com/xap/1.0/rights/": "xmpRights",
    "http://ns.adobe.com/xap/1.0/sType/ResourceEvent#": "stEvt",
    "http://ns.adobe.com/xap/1.0/sType/ResourceRef#": "stRef",
    "http://purl.org/dc/elements/1.1/": "dc",
    "http://ns.adobe.com/photoshop/1.0/": "photoshop",
    "http://ns.adobe.com/tiff/1.0/": "tiff",
    "http://ns.adobe.com/exif/1.0/": "exif",
    "http://ns.adobe.com/exif/1.0/aux/": "aux",
    "http://iptc.org/std/Iptc4xmpCore/1.0/xmlns/": "Iptc4xmpCore",
    "http://iptc.org/std/Iptc4xmpExt/2008-02-29/": "Iptc4xmpExt",
    "http://ns.adobe.com/camera-raw-settings/1.0/": "crs",
    "http://ns.adobe.com/pdf/1.3/": "pdf",
    "http://ns.google.com/photos/1.0/camera/": "GCamera",
}
_SKIP_NAMESPACES = frozenset(
    {"http://www.w3.org/1999/02/22-rdf-syntax-ns#", "adobe:ns:meta/", "http://www.w3.org/XML/1998/namespace"}
)
_XMLNS_DECL = re.compile(r'xmlns:([A-Za-z_][\w.-]*)\s*=\s*["\']([^"\']+)["\']')
_XMP_START = re.compile(rb"<\?xpacket begin|<x:xmpmeta")
_XMP_END = re.compile(rb"</x:xmpmeta>(?:\s*<\?xpacket end=[^>]*\?>)?")

# IPTC-IIM record 2 dataset names (the ones provenance checks care about).
_IPTC_NAMES: dict[tuple[int, int], str] = {
    (2, 5): "ObjectName",
    (2, 25): "Keywords",
    (2, 40): "SpecialInstructions",
    (2, 55): "DateCreated",
    (2, 65): "OriginatingProgram",
    (2, 70): "ProgramVersion",
    (2, 80): "By-line",
    (2, 85): "By-lineTitle",
    (2, 105): "Headline",
    (2, 110): "Credit",
    (2, 115): "Source",
    (2, 116): "CopyrightNotice",
    (2, 120): "Caption-Abstract",
    (2, 122): "Writer-Editor",
}


def clean_text(value: Any, limit: int = MAX_VALUE_CHARS) -> str:
    """Any tag value -> a printable, bounded string (bytes decoded without failing)."""
    if isinstance(value, bytes | bytearray):
        raw = bytes(value)
        # EXIF UserComment: 8-byte character-code prefix.
        for prefix, codec in ((b"ASCII\0\0\0", "ascii"), (b"UNICODE\0", "utf-16")):
            if raw.startswith(prefix):
                return clean_text(raw[8:].decode(codec, "replace"), limit)
        raw = raw.rstrip(b"\0")
        text = raw.decode("utf-8", "replace")
        printable = sum(ch.isprintable() or ch in "\t\r\n" for ch in text)
        if text and printable < 0.9 * len(text):
            return f"<binary {len(raw)} bytes>"
    elif isinstance(value, tuple | list):
        text = "(" + ", ".join(clean_text(v, limit) for v in value[:64]) + ")"
    else:
        text = str(value)
    text = text.replace("\0", "")
    if len(text) > limit:
        text = text[:limit] + "...[truncated]"
    return text


def _json_scalar(value: Any) -> Any:
    if isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if value == value and abs(value) != float("inf") else str(value)
    return clean_text(value)


# ---------------------------------------------------------------- EXIF


def _exif_value(value: Any) -> str:
    # IFDRational and similar number-likes read better as a number than as "72/1".
    if hasattr(value, "numerator") and hasattr(value, "denominator"):
        try:
            return str(float(value)) if value.denominator else "nan"
        except (TypeError, ValueError, ZeroDivisionError):
            pass
    return clean_text(value)


def extract_exif(img: Image.Image) -> dict[str, str]:
    """EXIF tag name -> string, from IFD0, the Exif sub-IFD and the GPS sub-IFD."""
    out: dict[str, str] = {}
    try:
        exif = img.getexif()
    except Exception as exc:  # hostile EXIF blocks can break Pillow's parser
        log.debug("EXIF unreadable: %s", exc)
        return out
    pointer_tags = {int(ExifTags.IFD.Exif), int(ExifTags.IFD.GPSInfo), int(ExifTags.IFD.Interop)}

    def add(items: Mapping[int, Any], names: Mapping[int, str]) -> None:
        for tag, value in list(items.items())[:1024]:
            try:
                if tag in pointer_tags:
                    continue
                name = names.get(tag) or f"0x{int(tag):04x}"
                if name == "MakerNote":  # vendor binary blob: size only
                    out[name] = f"<binary {len(value)} bytes>"
                    continue
                out.setdefault(name, _exif_value(value))
            except Exception as exc:
                log.debug("skipping EXIF tag %r: %s", tag, exc)

    add(exif, ExifTags.TAGS)
    sub_ifds = ((ExifTags.IFD.Exif, ExifTags.TAGS), (ExifTags.IFD.GPSInfo, ExifTags.GPSTAGS))
    for ifd, names in sub_ifds:
        try:
            sub = exif.get_ifd(ifd)
        except Exception as exc:
            log.debug("EXIF sub-IFD %s unreadable: %s", ifd, exc)
            continue
        if ifd == ExifTags.IFD.GPSInfo:
            sub = {k: v for k, v in sub.items()}
            names = {k: f"GPS{v}" if not v.startswith("GPS") else v for k, v in names.items()}
        add(sub, names)
    return out


# ---------------------------------------------------------------- XMP


def _decode_xmp(raw: Any) -> str | None:
    if isinstance(raw, bytes | bytearray):
        data = bytes(raw)
        if data.startswith((b"\xfe\xff", b"\xff\xfe")):
            text = data.decode("utf-16", "replace")
        else:
            text = data.decode("utf-8", "replace")
    elif isinstance(raw, str):
        text = raw
    else:
        return None
    text = text.strip("\0 \t\r\n\ufeff")
    return text[:MAX_XMP_CHARS] if text else None


def xmp_from_image(img: Image.Image) -> str | None:
    """The raw XMP packet Pillow found (JPEG APP1, PNG iTXt, WebP chunk, TIFF tag 700)."""
    info = img.info
    for key in ("xmp", "XML:com.adobe.xmp"):
        if key in info:
            text = _decode_xmp(info[key])
            if text:
                return text
    tag_v2 = getattr(img, "tag_v2", None)
    if tag_v2 is not None:
        try:
            return _decode_xmp(tag_v2.get(700))
        except Exception:
            return None
    return None


def xmp_from_file(path: Path, file_size: int) -> str | None:
    """Find an XMP packet by scanning the head and tail of a file (videos embed it in
    MP4 ``uuid``/``XMP_`` boxes or Matroska tags, which the demuxer does not expose)."""
    try:
        with open(path, "rb") as fh:
            chunks = [fh.read(_XMP_SCAN_BYTES)]
            if file_size > _XMP_SCAN_BYTES:
                fh.seek(max(_XMP_SCAN_BYTES, file_size - _XMP_SCAN_BYTES))
                chunks.append(fh.read(_XMP_SCAN_BYTES))
    except OSError:
        return None
    for data in chunks:
        start = _XMP_START.search(data)
        if not start:
            continue
        end = _XMP_END.search(data, start.start())
        if end:
            return _decode_xmp(data[start.start() : end.end()])
    return None


def parse_xmp_fields(packet: str) -> dict[str, str]:
    """Flatten an XMP packet: ``prefix:LocalName`` -> text for every simple property.

    Attribute-form properties (``xmp:CreatorTool="..."``) and element-form ones
    (``<dc:creator><rdf:Seq><rdf:li>..``) both count; repeated values are joined with
    ``"; "``. Parsed with defusedxml, so entity tricks raise and yield an empty dict.
    """
    from defusedxml import ElementTree as SafeET

    prefixes = dict(_XMP_PREFIXES)
    for prefix, uri in _XMLNS_DECL.findall(packet[:MAX_XMP_CHARS]):
        prefixes.setdefault(uri, prefix)
    try:
        root = SafeET.fromstring(packet.encode("utf-8"))
    except Exception as exc:  # malformed XML, DTD/entity attacks...
        log.debug("XMP not parseable: %s", exc)
        return {}

    def qname(tag: str) -> str | None:
        if not isinstance(tag, str):
            return None  # comments / processing instructions
        if tag.startswith("{"):
            uri, _, local = tag[1:].partition("}")
            if uri in _SKIP_NAMESPACES:
                return None
            prefix = prefixes.get(uri)
            return f"{prefix}:{local}" if prefix else local
        return tag

    values: dict[str, list[str]] = {}

    def add(key: str | None, text: str | None) -> None:
        if key and text and text.strip() and len(values) < 2048:
            bucket = values.setdefault(key, [])
            if len(bucket) < 64:
                bucket.append(clean_text(text.strip()))

    def walk(elem: Any, prop: str | None) -> None:
        name = qname(elem.tag)
        for attr, val in elem.attrib.items():
            add(qname(attr), val)
        # rdf:li / rdf:Seq / rdf:Alt carry their value for the enclosing property.
        owner = name if name is not None else prop
        children = list(elem)
        if not children:
            add(owner, elem.text)
        for child in children:
            walk(child, owner)

    try:
        walk(root, None)
    except RecursionError:
        log.debug("XMP nested too deeply; keeping what was parsed")
    return {k: "; ".join(v) for k, v in values.items()}


# ---------------------------------------------------------------- PNG text, IPTC, comments


def extract_png_text(img: Image.Image) -> dict[str, str]:
    """tEXt/zTXt/iTXt keyword -> text (XMP excluded: it has its own key)."""
    out: dict[str, str] = {}
    try:
        texts = getattr(img, "text", None) or {}
    except Exception as exc:  # Pillow reads trailing chunks here; a bad one must not crash
        log.debug("PNG text chunks unreadable: %s", exc)
        return out
    for key, value in list(texts.items())[:1024]:
        try:
            if key == "XML:com.adobe.xmp":
                continue
            out[clean_text(key, 256)] = clean_text(value, 65536)
        except Exception as exc:
            log.debug("skipping PNG text chunk: %s", exc)
    return out


def extract_iptc(img: Image.Image) -> dict[str, str]:
    """IPTC-IIM datasets (JPEG APP13 / TIFF) as ``name`` or ``"record:dataset"`` -> text."""
    out: dict[str, str] = {}
    try:
        info = IptcImagePlugin.getiptcinfo(img)  # type: ignore[arg-type]
    except Exception as exc:
        log.debug("IPTC unreadable: %s", exc)
        return out
    if not info:
        return out
    for key, value in list(info.items())[:512]:
        try:
            record, dataset = key
            name = _IPTC_NAMES.get((record, dataset), f"{record}:{dataset}")
            if isinstance(value, list):
                out[name] = "; ".join(clean_text(v) for v in value[:64])
            else:
                out[name] = clean_text(value)
        except Exception as exc:
            log.debug("skipping IPTC dataset %r: %s", key, exc)
    return out


def extract_image_metadata(img: Image.Image) -> dict[str, Any]:
    """All metadata groups Pillow can give for an opened (and loaded) image."""
    md: dict[str, Any] = {}
    exif = extract_exif(img)
    if exif:
        md["exif"] = exif
    xmp = xmp_from_image(img)
    if xmp:
        md["xmp"] = xmp
        fields = parse_xmp_fields(xmp)
        if fields:
            md["xmp_fields"] = fields
    if img.format == "PNG":
        texts = extract_png_text(img)
        if texts:
            md["png_text"] = texts
    if img.format in ("JPEG", "TIFF"):
        iptc = extract_iptc(img)
        if iptc:
            md["iptc"] = iptc
    comment = img.info.get("comment")
    if comment:
        md["comment"] = clean_text(comment, 65536)
    return md


def tags_dict(tags: Mapping[Any, Any] | None) -> dict[str, str]:
    """A PyAV ``metadata`` mapping -> bounded str -> str dict."""
    out: dict[str, str] = {}
    if not tags:
        return out
    try:
        items = list(tags.items())[:1024]
    except Exception:
        return out
    for key, value in items:
        try:
            out[clean_text(key, 256)] = clean_text(value)
        except Exception as exc:
            log.debug("skipping container tag: %s", exc)
    return out


def container_and_stream_tags(container: Any, stream: Any) -> dict[str, Any]:
    """``container_tags`` / ``stream_tags`` of a PyAV container and one of its streams,
    each only when non-empty (the ``metadata`` groups of :class:`MediaInfo`)."""
    metadata: dict[str, Any] = {}
    container_tags = tags_dict(container.metadata)
    if container_tags:
        metadata["container_tags"] = container_tags
    stream_tags = tags_dict(stream.metadata)
    if stream_tags:
        metadata["stream_tags"] = stream_tags
    return metadata


# ---------------------------------------------------------------- bounding


def _size(value: Any) -> int:
    return len(json.dumps(value, ensure_ascii=False).encode("utf-8"))


def bound_metadata(md: dict[str, Any], max_bytes: int) -> dict[str, Any]:
    """Keep metadata JSON-safe and within ``max_bytes`` of serialised JSON.

    Groups are kept in order; once the budget runs out the current value is cut and the
    rest dropped, and ``truncated: True`` is set.
    """
    budget = max(0, max_bytes - 32)  # room for the "truncated" marker
    out: dict[str, Any] = {}
    truncated = False

    def fit(value: Any) -> Any:
        nonlocal budget, truncated
        if isinstance(value, dict | list | tuple):
            if truncated or budget < 4:
                truncated = True
                return None
            budget -= 4  # the braces / brackets and the ", " after them
        if isinstance(value, dict):
            kept: dict[str, Any] = {}
            for k, v in value.items():
                key = clean_text(k, 256)
                cost = _size(key) + 2
                if truncated or cost > budget:
                    truncated = True
                    break
                budget -= cost
                fitted = fit(v)
                if fitted is None:
                    break
                kept[key] = fitted
            return kept
        if isinstance(value, list | tuple):
            items: list[Any] = []
            for v in value:
                fitted = fit(v)
                if fitted is None:
                    break
                items.append(fitted)
            return items
        scalar = _json_scalar(value)
        cost = _size(scalar) + 2  # with the ", " separator
        if cost <= budget:
            budget -= cost
            return scalar
        truncated = True
        room = budget - 4 - len("...[truncated]")  # quotes, separator, marker
        if isinstance(scalar, str) and room > 64:
            cut = scalar[: room // 6]  # JSON needs up to 6 bytes per char (\u001f)
            budget = 0
            return cut + "...[truncated]"
        budget = 0
        return None

    for key, value in md.items():
        if truncated:
            break
        budget -= _size(key) + 2  # '"key": '
        fitted = fit(value)
        if fitted is not None and fitted != {}:
            out[key] = fitted
    if truncated:
        out["truncated"] = True
    return out
