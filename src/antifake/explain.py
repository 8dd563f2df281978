"""What each detector's result means for the verdict, in words a reviewer can use.

A detector's score is its own P(AI), but not every score is evidence *for* AI: splicing at
0.50 means "no compact region", a detector left out of the fusion did not move the verdict,
and a low forensic score is evidence of authenticity. :func:`stance_of` classifies each
result as supporting ``ai``, supporting ``authentic``, or ``neutral`` from its measured
contribution to the fused log-odds (``fusion.contributions``); :func:`verdict_reasons`
states, in short sentences, why the verdict is what it is. Interfaces (CLI, web page,
reports) show only ``ai`` results as AI evidence.
"""

from __future__ import annotations

from typing import Any, Literal

from antifake.results import AnalysisResult, DetectorResult

Stance = Literal["ai", "authentic", "neutral"]

# |log-odds| a detector must add to the fused score to count as evidence either way:
# 0.4 moves an even 50 % to about 40 % or 60 %; smaller pushes are reported as neutral.
MIN_CONTRIBUTION = 0.4


def stance_of(det: DetectorResult, fusion: dict[str, Any]) -> Stance:
    """``ai`` / ``authentic`` / ``neutral`` for one detector result of a fused verdict."""
    if det.error is not None or det.score is None:
        return "neutral"
    if det.decisive:
        return "ai" if det.score >= 0.5 else "authentic"
    contribution = (fusion.get("contributions") or {}).get(det.detector)
    if contribution is None:  # not part of the verdict (ignored, or an older result)
        return "neutral"
    if contribution >= MIN_CONTRIBUTION:
        return "ai"
    if contribution <= -MIN_CONTRIBUTION:
        return "authentic"
    return "neutral"


def _pct(p: float) -> str:
    return f"{p * 100:.0f} %"


def verdict_reasons(result: AnalysisResult) -> list[str]:
    """Plain-language reasons for ``result``'s verdict (empty for a failed analysis)."""
    if result.error is not None or result.verdict is None or result.ai_probability is None:
        return []
    fusion = result.fusion or {}
    p = result.ai_probability
    ai_thr = fusion.get("ai_threshold")
    auth_thr = fusion.get("authentic_threshold")
    for_ai = [d for d in result.detectors if d.stance == "ai"]
    for_real = [d for d in result.detectors if d.stance == "authentic"]
    decisive = [d for d in result.detectors if d.decisive and d.score is not None]
    reasons: list[str] = []
    if decisive:
        d = decisive[0]
        reasons.append(f"{d.detector} settles it on its own: {d.summary}")
    if result.verdict == "ai_generated":
        if not decisive and isinstance(ai_thr, int | float):
            reasons.append(f"The combined P(AI) {_pct(p)} is at or above the AI threshold "
                           f"{_pct(ai_thr)}.")
        reasons += [f"{d.detector}: {d.summary}" for d in for_ai if d not in decisive]
    elif result.verdict == "authentic":
        if isinstance(auth_thr, int | float):
            reasons.append(f"The combined P(AI) {_pct(p)} is at or below the authentic "
                           f"threshold {_pct(auth_thr)}.")
        reasons += [f"{d.detector} finds no sign of generation ({d.summary})"
                    for d in for_real]
        reasons.append("No provenance mark of AI generation was found; absence of marks "
                       "alone would prove nothing.")
    else:
        opinions = [d for d in result.detectors if d.score is not None and d.error is None]
        if fusion.get("basis") == "no-evidence" or not opinions:
            reasons.append("No detector gave a usable opinion on this file, so there is "
                           "nothing to decide on.")
        elif isinstance(ai_thr, int | float) and isinstance(auth_thr, int | float):
            reasons.append(f"The combined P(AI) {_pct(p)} lies between the authentic "
                           f"({_pct(auth_thr)}) and AI ({_pct(ai_thr)}) thresholds: the "
                           "evidence is not strong enough either way.")
        if for_ai:
            reasons.append("Pointing to AI: " + "; ".join(d.detector for d in for_ai) + ".")
        if for_real:
            reasons.append("Pointing to a real capture: "
                           + "; ".join(d.detector for d in for_real) + ".")
    return reasons


def sound_track_summary(result: AnalysisResult) -> dict[str, Any] | None:
    """For a video whose sound track was judged: what the speech detector found, reported
    next to the (picture-based) verdict, which it does not enter (not calibrated yet)."""
    if result.media_type != "video":
        return None
    speech = next((d for d in result.detectors
                   if d.detector == "synthetic_speech" and d.score is not None), None)
    if speech is None or speech.score is None:
        return None
    threshold = speech.details.get("threshold")
    flagged = isinstance(threshold, int | float) and speech.score >= threshold
    return {"detector": speech.detector,
            "speech": "sounds_synthetic" if flagged else "not_flagged",
            "p_synthetic": round(float(speech.score), 4), "threshold": threshold,
            "counted_in_verdict": speech.stance != "neutral" or speech.detector in (
                (result.fusion or {}).get("contributions") or {}),
            "summary": speech.summary}


def annotate(result: AnalysisResult) -> None:
    """Set every detector's ``stance``, the result's ``reasons`` and, for a video with
    speech, its ``audio`` summary (after fusion)."""
    for det in result.detectors:
        det.stance = stance_of(det, result.fusion or {})
    result.reasons = verdict_reasons(result)
    result.audio = sound_track_summary(result)
    if result.audio is not None and not result.audio["counted_in_verdict"]:
        word = ("sounds synthesised" if result.audio["speech"] == "sounds_synthetic"
                else "is not flagged as synthetic")
        result.reasons.append(
            f"Sound track: the speech {word} (P(synthetic) "
            f"{_pct(result.audio['p_synthetic'])}); reported only, not part of this "
            "verdict, which judges the pictures.")


def main_evidence(result: AnalysisResult) -> str:
    """One line for tables: the strongest evidence in the verdict's direction (for
    ``uncertain``, why it is uncertain)."""
    if result.error is not None:
        return str(result.error.get("message", ""))
    contributions = (result.fusion or {}).get("contributions") or {}
    decisive = [d for d in result.detectors if d.decisive and d.score is not None]
    if decisive:
        return f"{decisive[0].detector}: {decisive[0].summary}"
    want = {"ai_generated": "ai", "authentic": "authentic"}.get(result.verdict or "")
    side = [d for d in result.detectors if want and d.stance == want]
    if side:
        top = max(side, key=lambda d: abs(float(contributions.get(d.detector, 0.0))))
        prefix = "" if want == "ai" else "no sign of generation - "
        return f"{prefix}{top.detector}: {top.summary}"
    return result.reasons[0] if result.reasons else "no provenance or forensic evidence"
