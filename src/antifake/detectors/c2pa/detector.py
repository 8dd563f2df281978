"""C2PA Content Credentials: read the signed manifest and report what it declares.

The active manifest is read with c2pa-python's :class:`c2pa.Reader`, which validates the
claim signature, the certificate chain (against the configured trust anchors) and the hard
binding of the manifest to the asset bytes. Its validation state is mapped onto
``trusted`` / ``valid`` / ``invalid`` / ``tampered`` and the ``digitalSourceType`` of the
actions (IPTC vocabulary) decides whether the file declares itself AI-generated. See
README.md next to this file for the scores and their reasoning.
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal

import c2pa

from antifake.detectors.base import AnalysisContext
from antifake.detectors.registry import register_detector
from antifake.errors import AntifakeError, ErrorCode
from antifake.generators import OTHER_AI, family_for
from antifake.media.types import Media, MediaType
from antifake.results import DetectorResult, GeneratorGuess

log = logging.getLogger(__name__)

TRUST_ANCHORS_ENV = "ANTIFAKE_C2PA_TRUST_ANCHORS"

ValidationState = Literal["trusted", "valid", "invalid", "tampered"]

# IPTC digital source types (the last path segment of the vocabulary URI).
AI_SOURCE_TYPES = frozenset(
    {"trainedAlgorithmicMedia", "compositeWithTrainedAlgorithmicMedia", "algorithmicMedia"}
)
SYNTHETIC_SOURCE_TYPES = frozenset({"compositeSynthetic"})  # synthetic, not necessarily AI
CAPTURE_SOURCE_TYPES = frozenset(
    {
        "digitalCapture",
        "computationalCapture",
        "negativeFilm",
        "positiveFilm",
        "print",
        "compositeCapture",
        "screenCapture",
        "virtualRecording",
    }
)
# Actions that make or change the content, for which a softwareAgent is the "author".
CREATIVE_ACTIONS = frozenset({"c2pa.created", "c2pa.edited", "c2pa.placed", "c2pa.opened"})

# Failure codes meaning the asset bytes no longer match what was signed.
ASSET_HASH_MISMATCH_CODES = frozenset(
    {
        "assertion.dataHash.mismatch",
        "assertion.bmffHash.mismatch",
        "assertion.boxesHash.mismatch",
        "assertion.collectionHash.mismatch",
    }
)
# Reported under ``failure`` even when the state is Valid: the chain is simply not anchored.
UNTRUSTED_CODES = frozenset({"signingCredential.untrusted"})

# Scores; README.md explains each.
SCORE_AI_VERIFIED = 0.99  # AI declared in a valid/trusted active manifest
SCORE_AI_AGENT_VERIFIED = 0.95  # AI inferred from an AI softwareAgent / an ingredient's claim
SCORE_AI_UNVERIFIED = 0.7  # AI declared but the manifest is invalid or the asset tampered
SCORE_SYNTHETIC_VERIFIED = 0.75
SCORE_SYNTHETIC_UNVERIFIED = 0.6
SCORE_CAPTURE_TRUSTED = 0.1
SCORE_CAPTURE_UNTRUSTED = 0.4
SCORE_NO_AI_TRUSTED = 0.3


def _source_type_name(uri: Any) -> str | None:
    """``http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia`` -> the term."""
    if not isinstance(uri, str) or not uri.strip():
        return None
    return uri.strip().rstrip("/").rsplit("/", 1)[-1]


def _agent_name(agent: Any) -> str | None:
    """softwareAgent is a string in actions v1 and a ClaimGeneratorInfo object in v2."""
    if isinstance(agent, str):
        return agent or None
    if isinstance(agent, dict):
        name = agent.get("name")
        if isinstance(name, str) and name:
            version = agent.get("version")
            return f"{name} {version}" if isinstance(version, str) and version else name
    return None


def _claim_generator_names(manifest: dict[str, Any]) -> list[str]:
    names: list[str] = []
    for info in manifest.get("claim_generator_info") or []:
        if isinstance(info, dict) and isinstance(info.get("name"), str):
            version = info.get("version")
            names.append(f"{info['name']} {version}" if isinstance(version, str) else info["name"])
    generator = manifest.get("claim_generator")
    if isinstance(generator, str) and generator:
        names.append(generator)
    return names


@dataclass
class ManifestClaims:
    """What one manifest declares about how its asset was made."""

    label: str
    claim_generators: list[str] = field(default_factory=list)
    actions: list[dict[str, Any]] = field(default_factory=list)
    source_types: list[str] = field(default_factory=list)  # IPTC terms, in order, deduplicated
    ai_agents: list[str] = field(default_factory=list)  # softwareAgents naming an AI family

    @property
    def declares_ai(self) -> bool:
        return any(t in AI_SOURCE_TYPES for t in self.source_types)

    @property
    def declares_synthetic(self) -> bool:
        return any(t in SYNTHETIC_SOURCE_TYPES for t in self.source_types)

    @property
    def declares_capture(self) -> bool:
        return any(t in CAPTURE_SOURCE_TYPES for t in self.source_types)


def parse_manifest(label: str, manifest: dict[str, Any]) -> ManifestClaims:
    """Extract actions, digital source types and AI software agents from one manifest."""
    claims = ManifestClaims(label=label, claim_generators=_claim_generator_names(manifest))

    def add_source_type(uri: Any) -> None:
        term = _source_type_name(uri)
        if term and term not in claims.source_types:
            claims.source_types.append(term)

    for assertion in manifest.get("assertions") or []:
        if not isinstance(assertion, dict):
            continue
        label_ = str(assertion.get("label", ""))
        data = assertion.get("data")
        if not isinstance(data, dict):
            continue
        if label_.startswith("c2pa.actions"):
            for action in data.get("actions") or []:
                if not isinstance(action, dict):
                    continue
                name = str(action.get("action", ""))
                agent = _agent_name(action.get("softwareAgent"))
                source_type = action.get("digitalSourceType")
                summary: dict[str, Any] = {"action": name}
                if agent:
                    summary["softwareAgent"] = agent
                if source_type:
                    summary["digitalSourceType"] = source_type
                    add_source_type(source_type)
                claims.actions.append(summary)
                source_term = _source_type_name(source_type)
                if (
                    agent
                    and name in CREATIVE_ACTIONS
                    and source_term not in CAPTURE_SOURCE_TYPES
                    and family_for(agent)
                ):
                    claims.ai_agents.append(agent)
        elif label_.startswith("stds.iptc"):
            # IPTC photo metadata assertion (older Adobe Firefly output declares it here).
            for key, value in data.items():
                if key.lower().endswith("digitalsourcetype"):
                    add_source_type(value)
    return claims


def _failure_codes(validation_results: dict[str, Any] | None) -> list[str]:
    if not isinstance(validation_results, dict):
        return []
    active = validation_results.get("activeManifest") or {}
    return [str(f.get("code")) for f in active.get("failure") or [] if isinstance(f, dict)]


def classify_validation(state: str | None, failure_codes: list[str]) -> ValidationState:
    """Map the c2pa reader's validation state and failure codes onto ours."""
    normalized = (state or "").lower()
    if normalized == "trusted":
        return "trusted"
    if any(code in ASSET_HASH_MISMATCH_CODES for code in failure_codes):
        return "tampered"
    real_failures = [c for c in failure_codes if c not in UNTRUSTED_CODES]
    if normalized == "valid" and not real_failures:
        return "valid"
    return "invalid"


def _load_trust_anchors(source: str | Path) -> str:
    """PEM text from ``source``: inline PEM text, or the path of a PEM bundle."""
    if isinstance(source, str) and "-----BEGIN" in source:
        return source
    path = Path(source).expanduser()
    try:
        text = path.read_text("ascii")
    except (OSError, UnicodeDecodeError) as exc:
        raise AntifakeError(
            ErrorCode.INVALID_REQUEST, f"c2pa: cannot read trust anchors {str(path)!r}: {exc}"
        ) from exc
    if "-----BEGIN CERTIFICATE-----" not in text:
        raise AntifakeError(
            ErrorCode.INVALID_REQUEST, f"c2pa: no PEM certificate in trust anchors {str(path)!r}"
        )
    return text


@register_detector(
    "c2pa", description="C2PA Content Credentials: signed provenance, AI declarations"
)
class C2paDetector:
    """Reads C2PA Content Credentials and reports their validity and AI declarations."""

    name: ClassVar[str] = "c2pa"
    kind: ClassVar[Literal["provenance"]] = "provenance"
    media_types: ClassVar[frozenset[MediaType]] = frozenset({"image", "video", "audio"})
    version: ClassVar[str] = f"c2pa-detector-1/c2pa-rs-{c2pa.sdk_version()}"

    def __init__(self, trust_anchors: str | Path | None = None) -> None:
        """``trust_anchors``: PEM bundle (path or PEM text) of root CAs whose chains count as
        trusted; defaults to the file named by ``$ANTIFAKE_C2PA_TRUST_ANCHORS``."""
        source = trust_anchors if trust_anchors is not None else os.environ.get(TRUST_ANCHORS_ENV)
        self.trust_anchors_pem: str | None = _load_trust_anchors(source) if source else None
        self._context = self._make_context()

    def settings_dict(self) -> dict[str, Any]:
        """The c2pa settings this detector reads with."""
        settings: dict[str, Any] = {
            "verify": {
                "verify_trust": True,
                # Offline by design: never fetch a remote manifest or OCSP response named
                # by an untrusted file.
                "remote_manifest_fetch": False,
                "ocsp_fetch": False,
            }
        }
        if self.trust_anchors_pem:
            settings["trust"] = {"trust_anchors": self.trust_anchors_pem}
        return settings

    def _make_context(self) -> c2pa.Context:
        try:
            settings = c2pa.Settings.from_dict(self.settings_dict())
            try:
                return c2pa.Context(settings)
            finally:
                settings.close()
        except c2pa.C2paError as exc:
            raise AntifakeError(
                ErrorCode.INVALID_REQUEST, f"c2pa: invalid trust configuration: {exc}"
            ) from exc

    # ------------------------------------------------------------------ analysis

    def analyze(self, media: Media, ctx: AnalysisContext) -> DetectorResult:
        """Read and judge the file's Content Credentials (never raises for bad manifests)."""
        started = time.perf_counter()
        result = self._analyze(media)
        result.elapsed_ms = (time.perf_counter() - started) * 1000
        return result

    def _result(self, score: float | None, summary: str, **kwargs: Any) -> DetectorResult:
        return DetectorResult(
            detector=self.name, score=score, summary=summary, kind=self.kind, **kwargs
        )

    def _mime_for(self, media: Media) -> str | None:
        supported = set(c2pa.Reader.get_supported_mime_types())
        for candidate in (media.info.mime, media.info.format):
            if candidate and candidate.lower() in supported:
                return candidate.lower()
        return None

    def _analyze(self, media: Media) -> DetectorResult:
        mime = self._mime_for(media)
        if mime is None:
            return self._result(
                None,
                f"C2PA not checked: format {media.info.format!r} cannot carry Content "
                "Credentials readable by the c2pa SDK",
                details={"status": "unsupported_format", "format": media.info.format},
            )
        try:
            with open(media.path, "rb") as stream:
                reader = c2pa.Reader.try_create(mime, stream, None, self._context)
                if reader is None:
                    return self._no_manifest()
                with reader:
                    store = json.loads(reader.json())
        except c2pa.C2paError as exc:
            return self._unreadable(exc)
        except (ValueError, KeyError, TypeError) as exc:  # malformed JSON from the SDK
            return self._unreadable(exc)
        except OSError as exc:
            raise AntifakeError(ErrorCode.NOT_FOUND, f"c2pa: cannot open file: {exc}") from exc
        try:
            return self._judge(store)
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            return self._unreadable(exc)

    def _no_manifest(self) -> DetectorResult:
        return self._result(
            None,
            "No Content Credentials found",
            evidence=[
                "No C2PA manifest is embedded in the file; absence is not evidence "
                "(most platforms strip metadata)."
            ],
            details={"status": "no_manifest"},
        )

    def _unreadable(self, exc: Exception) -> DetectorResult:
        kind = type(exc).__name__.lstrip("_").removeprefix("C2pa") or "Error"
        message = str(exc).strip() or kind
        if not message.startswith(f"{kind}:"):
            message = f"{kind}: {message}"
        message = message[:500]
        if isinstance(exc, c2pa.C2paError.RemoteManifest) or "fetch remote manifest" in message:
            summary = "Content Credentials are stored remotely and were not fetched (offline)"
            status = "remote_manifest"
        elif "asset could not be parsed" in message:
            # The container itself is broken (e.g. truncated): we cannot tell whether it
            # ever carried a manifest.
            summary = "Content Credentials could not be checked: the file could not be parsed"
            status = "unreadable"
        else:
            summary = "Content Credentials present but unreadable"
            status = "unreadable"
        return self._result(
            None,
            summary,
            evidence=[f"The C2PA manifest is unreadable ({message[:300]})."],
            details={"status": status, "error": message},
        )

    def _judge(self, store: dict[str, Any]) -> DetectorResult:
        manifests: dict[str, Any] = store.get("manifests") or {}
        active_label = store.get("active_manifest")
        active = manifests.get(active_label) if isinstance(active_label, str) else None
        if not isinstance(active, dict):
            return self._result(
                None,
                "Content Credentials present but no active manifest",
                evidence=["The C2PA manifest store has no readable active manifest."],
                details={"status": "unreadable", "error": "no active manifest"},
            )
        results = store.get("validation_results")
        failures = _failure_codes(results)
        state = classify_validation(store.get("validation_state"), failures)
        claims = parse_manifest(str(active_label), active)

        ingredient_claims: list[ManifestClaims] = []
        ingredients_summary: list[dict[str, Any]] = []
        for ingredient in active.get("ingredients") or []:
            if not isinstance(ingredient, dict):
                continue
            entry: dict[str, Any] = {
                "title": ingredient.get("title"),
                "format": ingredient.get("format"),
                "relationship": ingredient.get("relationship"),
            }
            ing_label = ingredient.get("active_manifest")
            if isinstance(ing_label, str) and isinstance(manifests.get(ing_label), dict):
                ing = parse_manifest(ing_label, manifests[ing_label])
                ingredient_claims.append(ing)
                entry["claim_generator"] = ing.claim_generators[0] if ing.claim_generators else None
                entry["digital_source_types"] = ing.source_types
            ingredients_summary.append(entry)

        signature = active.get("signature_info") or {}
        details: dict[str, Any] = {
            "status": "manifest",
            "validation_state": state,
            "c2pa_validation_state": store.get("validation_state"),
            "validation_failures": failures,
            "active_manifest": active_label,
            "manifest_count": len(manifests),
            "claim_generator": active.get("claim_generator"),
            "claim_generator_info": active.get("claim_generator_info"),
            "title": active.get("title"),
            "signer": signature.get("common_name"),
            "issuer": signature.get("issuer"),
            "signing_time": signature.get("time"),
            "signature_alg": signature.get("alg"),
            "actions": claims.actions,
            "digital_source_types": claims.source_types,
            "ingredients": ingredients_summary,
            "trust_anchors_configured": self.trust_anchors_pem is not None,
        }
        evidence = [self._validation_sentence(state, signature, failures)]
        generator_text = ", ".join(claims.claim_generators) or "unknown"
        evidence.append(f"Claim generator: {generator_text}.")
        if claims.actions:
            evidence.append("Actions: " + "; ".join(self._describe(a) for a in claims.actions))

        verified = state in ("trusted", "valid")
        score: float | None
        ai_ingredients = [i for i in ingredient_claims if i.declares_ai or i.ai_agents]
        if claims.declares_ai or claims.ai_agents or ai_ingredients:
            return self._ai_result(
                claims, ai_ingredients, state, verified, details, evidence
            )
        if claims.declares_synthetic:
            score = SCORE_SYNTHETIC_VERIFIED if verified else SCORE_SYNTHETIC_UNVERIFIED
            evidence.append(
                "The manifest declares composite synthetic content (not necessarily AI)."
            )
            return self._result(
                score, f"Content Credentials ({state}) declare synthetic content",
                evidence=evidence, details=details,
            )
        if claims.declares_capture:
            if state == "trusted":
                score = SCORE_CAPTURE_TRUSTED
                evidence.append("A trusted signer declares a camera capture with no AI actions.")
            elif state == "valid":
                score = SCORE_CAPTURE_UNTRUSTED
                evidence.append(
                    "Declares a camera capture, but the signer is not on the trust list: "
                    "anyone can make such a certificate."
                )
            else:
                score = None
                evidence.append("Declares a camera capture, but the manifest cannot be relied on.")
            return self._result(
                score, f"Content Credentials ({state}) declare a camera capture",
                evidence=evidence, details=details,
            )
        score = SCORE_NO_AI_TRUSTED if state == "trusted" else None
        evidence.append("The manifest declares no AI generation.")
        return self._result(
            score, f"Content Credentials ({state}); no AI generation declared",
            evidence=evidence, details=details,
        )

    def _ai_result(
        self,
        claims: ManifestClaims,
        ai_ingredients: list[ManifestClaims],
        state: ValidationState,
        verified: bool,
        details: dict[str, Any],
        evidence: list[str],
    ) -> DetectorResult:
        direct = claims.declares_ai
        if direct:
            terms = [t for t in claims.source_types if t in AI_SOURCE_TYPES]
            evidence.append(f"digitalSourceType declares AI: {', '.join(terms)}.")
            how = "declared"
        elif claims.ai_agents:
            evidence.append(
                f"An AI generator is the software agent of a content action: "
                f"{', '.join(claims.ai_agents)}."
            )
            how = "ai_software_agent"
        else:
            evidence.append(
                "An ingredient's manifest declares AI generation: "
                + ", ".join(i.claim_generators[0] if i.claim_generators else i.label
                            for i in ai_ingredients)
                + "."
            )
            how = "ai_ingredient"
        details["ai_declaration"] = how
        generator = self._generator(claims, ai_ingredients)
        if verified:
            score = SCORE_AI_VERIFIED if direct else SCORE_AI_AGENT_VERIFIED
            decisive = True
            summary = f"Content Credentials ({state}) declare AI generation"
        else:
            score, decisive = SCORE_AI_UNVERIFIED, False
            summary = f"Content Credentials declare AI generation but are {state}"
            evidence.append(
                "The AI declaration exists but cannot be relied on: "
                + ("the content was changed after signing."
                   if state == "tampered" else "the signature or certificate is invalid.")
            )
        if generator:
            summary += f" ({generator.name or generator.family})"
        return self._result(
            score, summary, evidence=evidence, details=details,
            generator=generator, decisive=decisive,
        )

    @staticmethod
    def _generator(
        claims: ManifestClaims, ai_ingredients: list[ManifestClaims]
    ) -> GeneratorGuess:
        """The generator family, preferring the AI software agent over the claim generator."""
        candidates: list[tuple[str, float]] = [(a, 0.95) for a in claims.ai_agents]
        candidates += [
            (str(a["softwareAgent"]), 0.95)
            for a in claims.actions
            if a.get("softwareAgent") and _source_type_name(a.get("digitalSourceType"))
            in AI_SOURCE_TYPES
        ]
        candidates += [(g, 0.9) for g in claims.claim_generators]
        for ing in ai_ingredients:
            candidates += [(a, 0.85) for a in ing.ai_agents]
            candidates += [(g, 0.8) for g in ing.claim_generators]
        for name, probability in candidates:
            family = family_for(name)
            if family:
                return GeneratorGuess(family, probability, name)
        fallback = next((name for name, _ in candidates), None)
        return GeneratorGuess(OTHER_AI, 0.6, fallback)

    @staticmethod
    def _describe(action: dict[str, Any]) -> str:
        parts = [str(action.get("action"))]
        if action.get("softwareAgent"):
            parts.append(f"by {action['softwareAgent']}")
        term = _source_type_name(action.get("digitalSourceType"))
        if term:
            parts.append(f"[{term}]")
        return " ".join(parts)

    @staticmethod
    def _validation_sentence(
        state: ValidationState, signature: dict[str, Any], failures: list[str]
    ) -> str:
        who = signature.get("common_name") or "unknown signer"
        if signature.get("issuer"):
            who += f" (issued by {signature['issuer']})"
        when = f", signed {signature['time']}" if signature.get("time") else ""
        if state == "trusted":
            return f"Signature valid and chained to a trusted anchor: {who}{when}."
        if state == "valid":
            return (
                f"Signature and hashes valid, but the signer is not on the trust list: "
                f"{who}{when}."
            )
        if state == "tampered":
            return (
                f"Asset hash mismatch: the content changed after it was signed by {who} "
                f"({', '.join(failures)})."
            )
        return f"Manifest signature/certificate invalid for {who} ({', '.join(failures)})."
