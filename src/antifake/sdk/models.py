"""Typed mirrors of the service's JSON (every object also keeps its ``raw`` dict)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

JobStatus = Literal["queued", "running", "succeeded", "failed"]


@dataclass(frozen=True)
class ErrorInfo:
    code: str
    message: str

    @classmethod
    def parse(cls, d: dict[str, Any] | None) -> ErrorInfo | None:
        if not d:
            return None
        return cls(code=str(d.get("code", "")), message=str(d.get("message", "")))


@dataclass(frozen=True)
class Generator:
    family: str
    probability: float
    name: str | None = None

    @classmethod
    def parse(cls, d: dict[str, Any] | None) -> Generator | None:
        if not d:
            return None
        return cls(family=d["family"], probability=float(d["probability"]), name=d.get("name"))


@dataclass(frozen=True)
class Evidence:
    detector: str
    score: float | None
    summary: str
    # "ai" (supports AI), "authentic" (supports a real capture) or "neutral" (no opinion,
    # too weak, or not part of the verdict)
    stance: str = "neutral"


@dataclass(frozen=True)
class DetectorOutput:
    detector: str
    kind: str
    score: float | None
    summary: str
    evidence: list[str]
    decisive: bool
    generator: Generator | None
    details: dict[str, Any]
    elapsed_ms: float
    has_heatmap: bool
    timeline: list[float] | None = None
    timeline_times_s: list[float] | None = None
    error: ErrorInfo | None = None
    stance: str = "neutral"

    @classmethod
    def parse(cls, d: dict[str, Any]) -> DetectorOutput:
        return cls(
            detector=d["detector"], kind=d.get("kind", ""), score=d.get("score"),
            summary=d.get("summary", ""), evidence=list(d.get("evidence") or []),
            decisive=bool(d.get("decisive")), generator=Generator.parse(d.get("generator")),
            details=dict(d.get("details") or {}), elapsed_ms=float(d.get("elapsed_ms") or 0),
            has_heatmap=bool(d.get("has_heatmap")), timeline=d.get("timeline"),
            timeline_times_s=d.get("timeline_times_s"), error=ErrorInfo.parse(d.get("error")),
            stance=str(d.get("stance") or "neutral"),
        )


@dataclass(frozen=True)
class DetectionResult:
    """One file's analysis: the JSON of ``antifake scan --json`` / ``POST /v1/detect``."""

    file: str
    media_type: str | None
    verdict: Literal["ai_generated", "authentic", "uncertain"] | None
    ai_probability: float | None
    generator: Generator | None
    evidence: list[Evidence]
    detectors: list[DetectorOutput]
    error: ErrorInfo | None
    media: dict[str, Any] | None
    fusion: dict[str, Any]
    elapsed_ms: float
    engine_version: str
    analyzed_at: str
    raw: dict[str, Any] = field(repr=False, default_factory=dict)
    reasons: list[str] = field(default_factory=list)  # why the verdict, in plain words
    # A video's sound track: {"speech": "sounds_synthetic" | "not_flagged", "p_synthetic",
    # "threshold", "counted_in_verdict", "summary"}; None for other media or no speech.
    audio: dict[str, Any] | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    @classmethod
    def parse(cls, d: dict[str, Any]) -> DetectionResult:
        return cls(
            file=d.get("file", ""), media_type=d.get("media_type"), verdict=d.get("verdict"),
            ai_probability=d.get("ai_probability"), generator=Generator.parse(d.get("generator")),
            evidence=[Evidence(e["detector"], e.get("score"), e.get("summary", ""),
                               str(e.get("stance") or "neutral"))
                      for e in d.get("evidence") or []],
            detectors=[DetectorOutput.parse(x) for x in d.get("detectors") or []],
            error=ErrorInfo.parse(d.get("error")), media=d.get("media"),
            fusion=dict(d.get("fusion") or {}), elapsed_ms=float(d.get("elapsed_ms") or 0),
            engine_version=d.get("engine_version", ""), analyzed_at=d.get("analyzed_at", ""),
            raw=d, reasons=[str(r) for r in d.get("reasons") or []], audio=d.get("audio"),
        )


@dataclass(frozen=True)
class Job:
    id: str
    status: JobStatus
    progress: float
    file: str
    attempts: int
    stage: str | None
    error: ErrorInfo | None
    result: DetectionResult | None
    has_heatmap: bool
    created_at: str
    finished_at: str | None
    raw: dict[str, Any] = field(repr=False, default_factory=dict)

    @property
    def done(self) -> bool:
        return self.status in ("succeeded", "failed")

    @classmethod
    def parse(cls, d: dict[str, Any]) -> Job:
        res = d.get("result")
        return cls(
            id=d["id"], status=d["status"], progress=float(d.get("progress") or 0.0),
            file=d.get("file", ""), attempts=int(d.get("attempts") or 0), stage=d.get("stage"),
            error=ErrorInfo.parse(d.get("error")),
            result=DetectionResult.parse(res) if res else None,
            has_heatmap=bool(d.get("has_heatmap")), created_at=d.get("created_at", ""),
            finished_at=d.get("finished_at"), raw=d,
        )


@dataclass(frozen=True)
class JobPage:
    """One page of ``GET /v1/jobs``: jobs newest first (without results) and the cursor of
    the next page (None on the last)."""

    jobs: list[Job]
    next_cursor: str | None

    @classmethod
    def parse(cls, d: dict[str, Any]) -> JobPage:
        return cls(jobs=[Job.parse(j) for j in d.get("jobs") or []],
                   next_cursor=d.get("next_cursor"))
