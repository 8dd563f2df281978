"""Sampling spec parsing and generator-name mapping."""

from __future__ import annotations

import pytest

from antifake.config import FrameSampling
from antifake.errors import AntifakeError, ErrorCode
from antifake.generators import FAMILIES, family_for


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("all", FrameSampling("all", 2.0, None)),
        ("keyframes,max=5", FrameSampling("keyframes", 2.0, 5)),
        ("fps=0.5", FrameSampling("fps", 0.5, None)),
        ("fps=4, max=10", FrameSampling("fps", 4.0, 10)),
    ],
)
def test_sampling_parse(spec: str, expected: FrameSampling) -> None:
    assert FrameSampling.parse(spec) == expected


@pytest.mark.parametrize("spec", ["fps=abc", "sometimes", "max=0", "fps=-1", "fps=2,max=x"])
def test_sampling_parse_rejects_bad_specs(spec: str) -> None:
    with pytest.raises(AntifakeError) as info:
        FrameSampling.parse(spec)
    assert info.value.code == ErrorCode.INVALID_REQUEST


@pytest.mark.parametrize(
    ("name", "family"),
    [
        ("Runway Gen-3 Alpha", "runway_gen3"),
        ("runwayml gen2", "runway_gen2"),
        ("Runway Gen-1", "runway_gen1"),
        ("RunwayML", "runway"),
        ("OpenAI Sora", "sora"),
        ("Pika 1.0", "pika"),
        ("Kling AI", "kling"),
        ("Midjourney v6", "midjourney"),
        ("FLUX.1-dev", "flux"),
        ("ComfyUI", "stable_diffusion"),
        ("Adobe Firefly", "firefly"),
        ("DALL·E 3", "dalle"),
    ],
)
def test_family_for_known_names(name: str, family: str) -> None:
    assert family_for(name) == family
    assert family in FAMILIES


@pytest.mark.parametrize(
    "name", ["Adobe Photoshop 25.1", "Canon EOS R5", "Lavf60.16.100", "", None]
)
def test_family_for_non_generators(name: str | None) -> None:
    assert family_for(name) is None


@pytest.mark.parametrize("spec", ["fps=1e9", "fps=241", "fps=inf", "fps=nan"])
def test_absurd_sampling_rates_are_refused(spec: str) -> None:
    """Issue 11 item 5: fps=1e9 on a 4 KB MP4 took 12.8 s and 2.4 GiB."""
    from antifake.errors import AntifakeError, ErrorCode

    with pytest.raises(AntifakeError) as err:
        FrameSampling.parse(spec)
    assert err.value.code == ErrorCode.INVALID_REQUEST
    assert FrameSampling.parse("fps=240").fps == 240.0
