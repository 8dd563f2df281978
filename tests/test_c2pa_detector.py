"""C2PA detector: signed/unsigned/tampered/corrupt files, trust anchors, generator families.

Every signed file is made at test time with a freshly generated certificate chain
(tests/c2pa_support.py), so nothing depends on committed keys or ../shared.
"""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import c2pa
import pytest

from antifake.detectors.base import AnalysisContext
from antifake.detectors.c2pa import TRUST_ANCHORS_ENV, C2paDetector
from antifake.detectors.c2pa.detector import classify_validation
from antifake.detectors.registry import create_detector
from antifake.errors import AntifakeError, ErrorCode
from antifake.media.types import Frame, MediaInfo, MediaType
from c2pa_support import (
    COMPOSITE_WITH_TRAINED,
    DIGITAL_CAPTURE,
    TRAINED_ALGORITHMIC_MEDIA,
    CertChain,
    make_cert_chain,
    manifest_definition,
    sign_bytes,
    tamper_pixels,
)
from synth import write_image, write_video

FORMATS: dict[str, tuple[str, str, MediaType]] = {
    # suffix: (format, mime, media type)
    ".jpg": ("jpeg", "image/jpeg", "image"),
    ".png": ("png", "image/png", "image"),
    ".mp4": ("mp4", "video/mp4", "video"),
    ".webp": ("webp", "image/webp", "image"),
    ".mkv": ("mkv", "video/x-matroska", "video"),
}


@dataclass
class FakeMedia:
    """Just enough of the Media protocol for a provenance detector (no decoding)."""

    info: MediaInfo

    @property
    def path(self) -> Path:
        return self.info.path

    def frames(self, sampling: Any = None) -> Iterator[Frame]:
        raise AssertionError("the c2pa detector must not decode frames")


def fake_media(path: Path) -> FakeMedia:
    fmt, mime, media_type = FORMATS[path.suffix]
    data = path.read_bytes()
    return FakeMedia(
        MediaInfo(
            path=path, media_type=media_type, format=fmt, mime=mime, size_bytes=len(data),
            sha256=hashlib.sha256(data).hexdigest(), width=64, height=48,
        )
    )


@pytest.fixture(scope="module")
def chain() -> CertChain:
    return make_cert_chain()


@pytest.fixture(scope="module")
def trusting(chain: CertChain) -> C2paDetector:
    """A detector whose trust list holds the test chain's root."""
    return C2paDetector(trust_anchors=chain.root_pem)


@pytest.fixture(scope="module")
def untrusting() -> C2paDetector:
    return C2paDetector()


def plain_file(tmp_path: Path, suffix: str) -> Path:
    path = tmp_path / f"plain{suffix}"
    if suffix == ".mp4":
        return write_video(path)
    if suffix == ".mkv":
        return write_video(path, container="matroska")
    return write_image(path)


def signed_file(
    tmp_path: Path, suffix: str, chain: CertChain, manifest: dict[str, Any], name: str = "signed"
) -> Path:
    src = plain_file(tmp_path, suffix)
    out = tmp_path / f"{name}{suffix}"
    out.write_bytes(sign_bytes(src.read_bytes(), FORMATS[suffix][1], manifest, chain))
    return out


def run(detector: C2paDetector, path: Path) -> Any:
    result = detector.analyze(fake_media(path), AnalysisContext())
    result.to_dict()  # must serialise whatever happened
    return result


RUNWAY = manifest_definition(
    "Runway ML", TRAINED_ALGORITHMIC_MEDIA, software_agent="Runway Gen-3 Alpha"
)


@pytest.mark.parametrize("suffix", [".jpg", ".png", ".mp4"])
def test_trusted_ai_manifest_is_decisive_with_family(
    tmp_path: Path, chain: CertChain, trusting: C2paDetector, suffix: str
) -> None:
    path = signed_file(tmp_path, suffix, chain, RUNWAY)
    result = run(trusting, path)
    assert result.details["validation_state"] == "trusted"
    assert result.score == pytest.approx(0.99)
    assert result.decisive is True
    assert result.generator is not None
    assert result.generator.family == "runway_gen3"
    assert result.generator.name == "Runway Gen-3 Alpha"
    assert result.details["digital_source_types"] == ["trainedAlgorithmicMedia"]
    assert result.details["signer"] == "Antifake Test Signer"
    assert result.details["actions"][0]["action"] == "c2pa.created"
    assert any("trainedAlgorithmicMedia" in e for e in result.evidence)


def test_untrusted_chain_reads_valid_not_trusted(
    tmp_path: Path, chain: CertChain, untrusting: C2paDetector
) -> None:
    path = signed_file(tmp_path, ".jpg", chain, RUNWAY)
    result = run(untrusting, path)
    assert result.details["validation_state"] == "valid"
    assert result.details["validation_failures"] == ["signingCredential.untrusted"]
    # A valid signature declaring AI is decisive even without trust: nobody forges a claim
    # against their own interest, and the claim binds to these exact bytes.
    assert result.decisive is True and result.score == pytest.approx(0.99)
    assert result.generator is not None and result.generator.family == "runway_gen3"


def test_anchor_of_another_chain_does_not_make_it_trusted(
    tmp_path: Path, chain: CertChain
) -> None:
    other = make_cert_chain(org="Someone Else")
    path = signed_file(tmp_path, ".jpg", chain, RUNWAY)
    assert run(C2paDetector(trust_anchors=other.root_pem), path).details[
        "validation_state"
    ] == "valid"


def test_trust_anchors_from_file_and_env(
    tmp_path: Path, chain: CertChain, monkeypatch: pytest.MonkeyPatch
) -> None:
    anchors = chain.write(tmp_path / "certs")["root_ca.pem"]
    path = signed_file(tmp_path, ".png", chain, RUNWAY)
    assert run(C2paDetector(trust_anchors=anchors), path).details["validation_state"] == "trusted"
    monkeypatch.setenv(TRUST_ANCHORS_ENV, str(anchors))
    from_env = C2paDetector()
    assert from_env.settings_dict()["trust"]["trust_anchors"] == chain.root_pem
    assert run(from_env, path).details["validation_state"] == "trusted"
    assert run(create_detector("c2pa"), path).details["validation_state"] == "trusted"  # type: ignore[arg-type]


def test_bad_trust_anchor_configuration_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(AntifakeError) as missing:
        C2paDetector(trust_anchors=tmp_path / "nope.pem")
    assert missing.value.code == ErrorCode.INVALID_REQUEST
    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate")
    with pytest.raises(AntifakeError):
        C2paDetector(trust_anchors=junk)


@pytest.mark.parametrize("suffix", [".jpg", ".png", ".mp4"])
def test_tampered_after_signing_is_not_decisive(
    tmp_path: Path, chain: CertChain, trusting: C2paDetector, suffix: str
) -> None:
    path = signed_file(tmp_path, suffix, chain, RUNWAY)
    path.write_bytes(tamper_pixels(path.read_bytes(), FORMATS[suffix][1]))
    result = run(trusting, path)
    assert result.details["validation_state"] in ("tampered", "invalid")
    assert result.decisive is False
    assert result.score is not None and 0.5 < result.score < 0.9
    assert any("cannot be relied on" in e for e in result.evidence)


def test_tampered_jpeg_is_reported_as_hash_mismatch(
    tmp_path: Path, chain: CertChain, trusting: C2paDetector
) -> None:
    path = signed_file(tmp_path, ".jpg", chain, RUNWAY)
    path.write_bytes(tamper_pixels(path.read_bytes(), "image/jpeg"))
    result = run(trusting, path)
    assert result.details["validation_state"] == "tampered"
    assert "assertion.dataHash.mismatch" in result.details["validation_failures"]


def test_trusted_camera_capture_scores_low(
    tmp_path: Path, chain: CertChain, trusting: C2paDetector, untrusting: C2paDetector
) -> None:
    manifest = manifest_definition("Leica M11 Firmware", DIGITAL_CAPTURE)
    path = signed_file(tmp_path, ".jpg", chain, manifest)
    trusted = run(trusting, path)
    assert trusted.details["validation_state"] == "trusted"
    assert trusted.score == pytest.approx(0.1)
    assert trusted.decisive is False and trusted.generator is None
    untrusted = run(untrusting, path)
    assert untrusted.score is not None and 0.1 < untrusted.score < 0.5
    assert untrusted.decisive is False


def test_ai_edit_of_a_capture_counts_as_ai(
    tmp_path: Path, chain: CertChain, trusting: C2paDetector
) -> None:
    manifest = manifest_definition(
        "Adobe Photoshop", DIGITAL_CAPTURE, software_agent="Camera App",
        extra_actions=[{
            "action": "c2pa.edited",
            "softwareAgent": {"name": "Adobe Firefly"},
            "digitalSourceType": COMPOSITE_WITH_TRAINED,
        }],
    )
    result = run(trusting, signed_file(tmp_path, ".png", chain, manifest))
    assert result.decisive is True and result.score == pytest.approx(0.99)
    assert result.generator is not None and result.generator.family == "firefly"


def test_ai_declared_by_unknown_generator_is_other_ai(
    tmp_path: Path, chain: CertChain, trusting: C2paDetector
) -> None:
    manifest = manifest_definition("Zorblax Imaginator 9", TRAINED_ALGORITHMIC_MEDIA)
    result = run(trusting, signed_file(tmp_path, ".jpg", chain, manifest))
    assert result.decisive is True
    assert result.generator is not None
    assert result.generator.family == "other_ai"
    assert result.generator.name is not None and "Zorblax" in result.generator.name


def test_ai_software_agent_without_source_type(
    tmp_path: Path, chain: CertChain, trusting: C2paDetector
) -> None:
    manifest = manifest_definition(
        "Some Tool", "http://cv.iptc.org/newscodes/digitalsourcetype/digitalCreation",
        extra_actions=[{"action": "c2pa.edited", "softwareAgent": {"name": "Sora"}}],
    )
    result = run(trusting, signed_file(tmp_path, ".jpg", chain, manifest))
    assert result.details["ai_declaration"] == "ai_software_agent"
    assert result.decisive is True and result.score == pytest.approx(0.95)
    assert result.generator is not None and result.generator.family == "sora"


def test_unsigned_file_has_no_opinion(tmp_path: Path, trusting: C2paDetector) -> None:
    for suffix in (".jpg", ".png", ".mp4"):
        result = run(trusting, plain_file(tmp_path, suffix))
        assert result.score is None, suffix
        assert result.details["status"] == "no_manifest"
        assert "No Content Credentials found" in result.summary


def test_garbage_manifest_does_not_crash(
    tmp_path: Path, chain: CertChain, trusting: C2paDetector
) -> None:
    path = signed_file(tmp_path, ".jpg", chain, RUNWAY)
    data = bytearray(path.read_bytes())
    pos = data.find(b"c2pa.signature")
    assert pos > 0
    for i in range(pos + 100, pos + 140):
        data[i] ^= 0xFF
    path.write_bytes(bytes(data))
    result = run(trusting, path)
    assert result.score is None
    assert result.details["status"] in ("unreadable", "manifest")
    if result.details["status"] == "unreadable":
        assert "unreadable" in result.summary
        assert any("manifest is unreadable" in e for e in result.evidence)
    else:  # the SDK may read the claim and report the signature as broken
        assert result.details["validation_state"] in ("invalid", "tampered")


@pytest.mark.parametrize("suffix", [".jpg", ".png", ".mp4"])
def test_truncated_signed_file_does_not_crash(
    tmp_path: Path, chain: CertChain, trusting: C2paDetector, suffix: str
) -> None:
    path = signed_file(tmp_path, suffix, chain, RUNWAY)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    result = run(trusting, path)
    assert result.decisive is False
    assert result.error is None
    assert result.score is None or result.score < 0.9
    if result.score is None:
        assert result.details["status"] == "unreadable"
        assert any("unreadable" in e for e in result.evidence)


def test_format_c2pa_cannot_read_is_skipped(tmp_path: Path, trusting: C2paDetector) -> None:
    result = run(trusting, plain_file(tmp_path, ".mkv"))
    assert result.score is None
    assert result.details["status"] == "unsupported_format"


def test_webp_is_read_too(tmp_path: Path, chain: CertChain, trusting: C2paDetector) -> None:
    result = run(trusting, signed_file(tmp_path, ".webp", chain, RUNWAY))
    assert result.details["validation_state"] == "trusted" and result.decisive


def test_validation_state_mapping() -> None:
    assert classify_validation("Trusted", []) == "trusted"
    assert classify_validation("Valid", ["signingCredential.untrusted"]) == "valid"
    assert classify_validation("Invalid", ["assertion.bmffHash.mismatch"]) == "tampered"
    assert classify_validation("Invalid", ["claimSignature.mismatch"]) == "invalid"
    assert classify_validation(None, []) == "invalid"


def test_remote_manifest_is_not_fetched(
    tmp_path: Path, chain: CertChain, untrusting: C2paDetector
) -> None:
    src = plain_file(tmp_path, ".jpg")
    info = c2pa.C2paSignerInfo(
        alg=b"es256", sign_cert=chain.x5chain_pem.encode(),
        private_key=chain.signer_key_pem.encode(), ta_url=None,
    )
    out = io.BytesIO()
    with c2pa.Signer.from_info(info) as signer, c2pa.Builder(json.dumps(RUNWAY)) as builder:
        builder.set_no_embed()
        builder.set_remote_url("http://127.0.0.1:9/manifest.c2pa")  # discard port: never served
        with open(src, "rb") as source:
            builder.sign(signer, "image/jpeg", source, out)
    path = tmp_path / "remote.jpg"
    path.write_bytes(out.getvalue())
    result = run(untrusting, path)
    assert result.score is None
    assert result.details["status"] == "remote_manifest"
    assert "127.0.0.1:9" in result.details["error"]


def test_committed_demo_example_reads_trusted_with_demo_root() -> None:
    examples = Path(__file__).resolve().parent.parent / "examples"
    path = examples / "c2pa_runway_gen3.jpg"
    assert path.stat().st_size < 100_000
    result = run(C2paDetector(trust_anchors=examples / "certs" / "root_ca.pem"), path)
    assert result.details["validation_state"] == "trusted"
    assert result.decisive is True
    assert result.generator is not None and result.generator.family == "runway_gen3"


@pytest.mark.parametrize("suffix", [".png", ".mp4"])
def test_with_real_open_media(
    tmp_path: Path, chain: CertChain, trusting: C2paDetector, suffix: str
) -> None:
    media_mod = pytest.importorskip("antifake.media.open")
    path = signed_file(tmp_path, suffix, chain, RUNWAY)
    result = trusting.analyze(media_mod.open_media(path, None), AnalysisContext())
    assert result.decisive is True
    assert result.generator is not None and result.generator.family == "runway_gen3"
