"""`antifake keys` and the serve command's auth default."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from antifake.service.auth import Authenticator, create_api_key
from antifake.service.cli import _is_loopback, keys_group
from antifake.service.settings import ServiceSettings
from antifake.service.store import JobStore


def test_loopback_detection() -> None:
    assert _is_loopback("127.0.0.1") and _is_loopback("::1") and _is_loopback("localhost")
    assert not _is_loopback("0.0.0.0") and not _is_loopback("192.168.1.5")


def test_keys_create_list_revoke(tmp_path: Path) -> None:
    runner = CliRunner()
    out = runner.invoke(keys_group, ["create", "ci", "--data-dir", str(tmp_path),
                                     "--rate", "2", "--daily-quota", "7"])
    assert out.exit_code == 0, out.output
    key = out.stdout.strip().splitlines()[0]
    assert key.startswith("af_")
    settings = ServiceSettings(data_dir=tmp_path)
    store = JobStore(settings.db_url)
    principal = Authenticator(store, settings).authenticate(key)
    assert principal is not None and principal.rate_limit_per_s == 2 and principal.daily_quota == 7
    key_id = principal.id
    listed = runner.invoke(keys_group, ["list", "--data-dir", str(tmp_path)])
    assert key_id in listed.output and key not in listed.output
    assert runner.invoke(keys_group, ["revoke", key_id, "--data-dir", str(tmp_path)]).exit_code == 0
    assert Authenticator(store, settings).authenticate(key) is None
    store.dispose()


def test_create_api_key_function_uses_env_settings(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("ANTIFAKE_DATA_DIR", str(tmp_path))
    key = create_api_key("lead")
    settings = ServiceSettings.from_env()
    assert settings.data_dir == tmp_path
    store = JobStore(settings.db_url)
    assert Authenticator(store, settings).authenticate(key) is not None
    assert (tmp_path / "pepper").stat().st_mode & 0o077 == 0  # pepper is private
    store.dispose()


def test_settings_round_trip_through_env(tmp_path: Path) -> None:
    s = ServiceSettings(data_dir=tmp_path, queue_backend="celery", workers=3,
                        plugin_modules=("a", "b"), auth_required=False, daily_quota=None)
    back = ServiceSettings.from_env(s.to_env())
    assert back.queue_backend == "celery" and back.workers == 3
    assert back.plugin_modules == ("a", "b") and back.auth_required is False
    assert back.data_dir == tmp_path and back.daily_quota is None and back.database_url is None


def test_keys_create_refuses_bad_rates(tmp_path: Path) -> None:
    """Issue 11 item 8: a zero/negative/inf/nan rate or a burst < 1 is refused at creation."""
    runner = CliRunner()
    for opts in (["--rate", "0"], ["--rate", "-1"], ["--rate", "inf"], ["--rate", "nan"],
                 ["--burst", "0"], ["--burst", "-3"]):
        out = runner.invoke(keys_group, ["create", "bad", "--data-dir", str(tmp_path), *opts])
        assert out.exit_code == 2, (opts, out.output)
        assert "must be" in out.output


def test_token_bucket_with_a_stored_zero_rate_does_not_overflow() -> None:
    from antifake.service.ratelimit import TokenBuckets

    buckets = TokenBuckets(clock=lambda: 5.0)
    assert buckets.allow("k", 0.0, 1) == (True, 0.0)
    ok, wait = buckets.allow("k", 0.0, 1)
    assert not ok and wait == float("inf")
