"""Property-based testing of the REST API from its own OpenAPI spec (schemathesis).

Bounded run: for every operation, ``ANTIFAKE_SCHEMATHESIS_EXAMPLES`` (default 12) valid and
as many invalid (negative-mode) requests, authenticated, against a real uvicorn server.
Checks: never a 5xx, every error on /v1 is the documented ``{"error": {"code",
"message"}}`` JSON, and an answer within 10 s. Longer run: see docs/reliability.md.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from typing import Any

import pytest

schemathesis = pytest.importorskip("schemathesis")
hypothesis = pytest.importorskip("hypothesis")

from antifake.service.api import create_app  # noqa: E402
from antifake.service.auth import create_key  # noqa: E402
from service_support import ServerThread, make_settings  # noqa: E402

EXAMPLES = int(os.environ.get("ANTIFAKE_SCHEMATHESIS_EXAMPLES", "12"))
# CI: the same examples every run; set ANTIFAKE_SCHEMATHESIS_RANDOM=1 to explore.
DERANDOMIZE = os.environ.get("ANTIFAKE_SCHEMATHESIS_RANDOM") != "1"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    settings = make_settings(tmp_path_factory.mktemp("st"), auth_required=True,
                             rate_limit_per_s=10_000.0, rate_limit_burst=10_000,
                             daily_quota=None)
    app = create_app(settings)
    key = create_key(app.state.service.store, settings, "schemathesis")
    with ServerThread(app) as srv:
        yield {"url": srv.url, "headers": {"Authorization": f"Bearer {key.api_key}"}}


def _operations(url: str) -> list[Any]:
    import httpx

    spec = httpx.get(url + "/openapi.json", timeout=10).json()
    schema = schemathesis.openapi.from_dict(spec)
    return [r.ok() for r in schema.get_all_operations()]


def _make_runner(op: Any, mode: Any, strategy: Any, url: str, headers: dict[str, str],
                 failures: list[str], calls: dict[str, int]) -> Any:
    @hypothesis.settings(max_examples=EXAMPLES, deadline=None, database=None,
                         derandomize=DERANDOMIZE,
                         suppress_health_check=list(hypothesis.HealthCheck),
                         phases=[hypothesis.Phase.explicit, hypothesis.Phase.generate])
    @hypothesis.given(case=strategy)
    def run(case: Any) -> None:
        t0 = time.perf_counter()
        response = case.call(base_url=url, headers=headers, timeout=30)
        elapsed = time.perf_counter() - t0
        calls["n"] += 1
        where = f"{mode.name} {op.label} -> {response.status_code}"
        if response.status_code >= 500:
            failures.append(f"{where}: {response.text[:300]}\n  {case.as_curl_command()}")
        elif elapsed > 10:
            failures.append(f"{where}: took {elapsed:.1f} s")
        elif response.status_code >= 400 and op.path.startswith("/v1/"):
            try:
                err = response.json()["error"]
                assert isinstance(err["code"], str) and isinstance(err["message"], str)
            except Exception:
                failures.append(f"{where}: error body not JSON: {response.text[:200]}")

    return run


def test_api_never_answers_5xx_to_generated_requests(server: dict[str, Any]) -> None:
    from schemathesis import GenerationMode

    url, headers = server["url"], server["headers"]
    ops = _operations(url)
    assert len(ops) >= 10
    failures: list[str] = []
    calls = {"n": 0}

    for op in ops:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            try:
                strategy = op.as_strategy(generation_mode=mode)
            except Exception as exc:  # an operation with nothing invalid to generate
                if mode is GenerationMode.NEGATIVE:
                    continue
                raise AssertionError(f"{op.label}: {exc!r}") from exc

            run = _make_runner(op, mode, strategy, url, headers, failures, calls)
            try:
                run()
            except hypothesis.errors.Unsatisfiable:
                # nothing invalid can be generated (e.g. GET /healthz has no inputs)
                assert mode is GenerationMode.NEGATIVE, op.label
    print(f"schemathesis: {calls['n']} requests over {len(ops)} operations")
    assert not failures, "\n".join(failures[:20])
    assert calls["n"] >= len(ops) * 2


def test_spec_covers_the_documented_routes(server: dict[str, Any]) -> None:
    labels = {op.label for op in _operations(server["url"])}
    for expected in ("POST /v1/detect", "POST /v1/jobs", "GET /v1/jobs/{job_id}",
                     "GET /v1/jobs/{job_id}/report", "GET /v1/me", "GET /healthz"):
        assert expected in labels, labels
