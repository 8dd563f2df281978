"""Durable state: API keys, jobs, results and usage, in SQLAlchemy 2 (SQLite or PostgreSQL).

A job moves ``queued -> running -> succeeded | failed``. A worker *claims* a job by an
atomic conditional UPDATE that also sets a lease (owner + expiry) and bumps the attempt
counter; while it works it renews the lease (heartbeat). A running job whose lease has
expired belongs to a dead worker and is claimable again, until ``max_attempts`` is spent,
after which it is failed with the recorded error. Results are stored with an upsert keyed
by job id, so running a job twice writes the same row (idempotent).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import (
    JSON,
    DateTime,
    Float,
    Integer,
    String,
    Text,
    and_,
    create_engine,
    delete,
    event,
    func,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.engine import Engine as SAEngine
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker
from sqlalchemy.types import TypeDecorator

JOB_STATUSES = ("queued", "running", "succeeded", "failed")
LOCAL_PRINCIPAL = "local"  # owner of jobs submitted without a key in single-user mode


def _aware(value: datetime | None) -> datetime | None:
    """Aggregates bypass the column type: SQLite hands back naive UTC datetimes."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite drops tzinfo)."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


class Base(DeclarativeBase):
    pass


class ApiKeyRow(Base):
    __tablename__ = "api_keys"

    key_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    key_hash: Mapped[str] = mapped_column(String(64))  # HMAC-SHA256(pepper, key), hex
    webhook_secret: Mapped[str] = mapped_column(String(100))
    rate_limit_per_s: Mapped[float | None] = mapped_column(Float, nullable=True)
    rate_limit_burst: Mapped[int | None] = mapped_column(Integer, nullable=True)
    daily_quota: Mapped[int | None] = mapped_column(Integer, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class JobRow(Base):
    __tablename__ = "jobs"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    principal: Mapped[str] = mapped_column(String(32), index=True)
    status: Mapped[str] = mapped_column(String(16), index=True, default="queued")
    progress: Mapped[float] = mapped_column(Float, default=0.0)
    stage: Mapped[str | None] = mapped_column(String(100), nullable=True)
    file_name: Mapped[str] = mapped_column(String(500))
    upload_path: Mapped[str] = mapped_column(Text)
    options: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    webhook_url: Mapped[str | None] = mapped_column(Text, nullable=True)
    webhook_status: Mapped[str | None] = mapped_column(String(100), nullable=True)
    idempotency_key: Mapped[str | None] = mapped_column(String(200), nullable=True, index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer, default=3)
    lease_owner: Mapped[str | None] = mapped_column(String(100), nullable=True)
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    error: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True, index=True)


class ResultRow(Base):
    __tablename__ = "results"

    job_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    result: Mapped[dict[str, Any]] = mapped_column(JSON)
    heatmaps_path: Mapped[str | None] = mapped_column(Text, nullable=True)
    written_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class IdempotencyRow(Base):
    """One row per (key, Idempotency-Key) that created jobs: its primary key makes two
    concurrent requests with the same Idempotency-Key create one batch of jobs, not two."""

    __tablename__ = "idempotency_keys"

    principal: Mapped[str] = mapped_column(String(32), primary_key=True)
    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class DuplicateIdempotencyKey(Exception):
    """Another request with the same Idempotency-Key created its jobs first."""


class UsageRow(Base):
    __tablename__ = "usage"

    principal: Mapped[str] = mapped_column(String(32), primary_key=True)
    day: Mapped[str] = mapped_column(String(10), primary_key=True)  # YYYY-MM-DD (UTC)
    files: Mapped[int] = mapped_column(Integer, default=0)


@dataclass(frozen=True)
class Job:
    """A detached snapshot of a job row (safe to use after the session closed)."""

    id: str
    principal: str
    status: str
    progress: float
    stage: str | None
    file_name: str
    upload_path: str
    options: dict[str, Any]
    webhook_url: str | None
    webhook_status: str | None
    attempts: int
    max_attempts: int
    error: dict[str, Any] | None
    created_at: datetime
    updated_at: datetime
    finished_at: datetime | None

    @classmethod
    def from_row(cls, row: JobRow) -> Job:
        return cls(
            id=row.id, principal=row.principal, status=row.status, progress=row.progress,
            stage=row.stage, file_name=row.file_name, upload_path=row.upload_path,
            options=dict(row.options or {}), webhook_url=row.webhook_url,
            webhook_status=row.webhook_status, attempts=row.attempts,
            max_attempts=row.max_attempts, error=row.error, created_at=row.created_at,
            updated_at=row.updated_at, finished_at=row.finished_at,
        )

    @property
    def done(self) -> bool:
        return self.status in ("succeeded", "failed")


@dataclass(frozen=True)
class NewJob:
    id: str
    file_name: str
    upload_path: str


def new_job_id() -> str:
    return uuid.uuid4().hex


def make_engine(url: str) -> SAEngine:
    """A SQLAlchemy engine; SQLite gets WAL + a busy timeout so threads and processes share it."""
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        return engine
    return create_engine(url, pool_pre_ping=True)


class JobStore:
    """Repository over the service tables. Thread-safe: one short session per call."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = make_engine(url)
        Base.metadata.create_all(self.engine)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    @contextmanager
    def session(self) -> Iterator[Session]:
        with self._sessions.begin() as s:
            yield s

    def ping(self) -> bool:
        with self.engine.connect() as conn:
            return conn.execute(text("SELECT 1")).scalar() == 1

    def dispose(self) -> None:
        self.engine.dispose()

    # -- API keys ------------------------------------------------------------------------
    def add_key(self, row: ApiKeyRow) -> None:
        with self.session() as s:
            s.add(row)

    def get_key(self, key_id: str) -> ApiKeyRow | None:
        with self.session() as s:
            return s.get(ApiKeyRow, key_id)

    def list_keys(self) -> list[ApiKeyRow]:
        with self.session() as s:
            return list(s.scalars(select(ApiKeyRow).order_by(ApiKeyRow.created_at)))

    def revoke_key(self, key_id: str) -> bool:
        with self.session() as s:
            res = s.execute(
                update(ApiKeyRow).where(ApiKeyRow.key_id == key_id, ApiKeyRow.revoked_at.is_(None))
                .values(revoked_at=utcnow())
            )
            return bool(res.rowcount)  # type: ignore[attr-defined]

    def _upsert(self, table: type[Base]) -> Any:
        """The dialect's INSERT (with ``on_conflict_do_nothing``) for ``table``."""
        if self.engine.dialect.name == "postgresql":
            from sqlalchemy.dialects.postgresql import insert as pg_insert

            return pg_insert(table)
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        return sqlite_insert(table)

    # -- usage / quotas ------------------------------------------------------------------
    def consume_quota(self, principal: str, files: int, daily_quota: int | None) -> bool:
        """Count ``files`` against today's quota; False (and nothing counted) if over it.

        Race-free under concurrent requests: an INSERT that ignores an existing row, then
        one conditional UPDATE (``files + n <= quota``) whose row count is the answer.
        """
        day = utcnow().strftime("%Y-%m-%d")
        with self.session() as s:
            s.execute(self._upsert(UsageRow).values(principal=principal, day=day, files=0)
                      .on_conflict_do_nothing())
            q = update(UsageRow).where(UsageRow.principal == principal, UsageRow.day == day)
            if daily_quota is not None:
                q = q.where(UsageRow.files + files <= daily_quota)
            res = s.execute(q.values(files=UsageRow.files + files))
            return bool(res.rowcount)  # type: ignore[attr-defined]

    def usage_today(self, principal: str) -> int:
        with self.session() as s:
            row = s.get(UsageRow, (principal, utcnow().strftime("%Y-%m-%d")))
            return row.files if row else 0

    # -- jobs ----------------------------------------------------------------------------
    def create_jobs(
        self,
        principal: str,
        files: list[NewJob],
        options: dict[str, Any],
        webhook_url: str | None,
        max_attempts: int,
        idempotency_key: str | None = None,
    ) -> list[Job]:
        now = utcnow()
        with self.session() as s:
            if idempotency_key:
                # Claimed in the same transaction as the jobs: of two racing requests one
                # inserts the claim, the other inserts nothing and raises (no duplicates).
                claimed = s.execute(
                    self._upsert(IdempotencyRow)
                    .values(principal=principal, key=idempotency_key, created_at=now)
                    .on_conflict_do_nothing())
                if not claimed.rowcount:  # type: ignore[attr-defined]
                    raise DuplicateIdempotencyKey(idempotency_key)
            rows = [
                JobRow(
                    id=f.id, principal=principal, status="queued", progress=0.0,
                    file_name=f.file_name, upload_path=f.upload_path, options=options,
                    webhook_url=webhook_url, idempotency_key=idempotency_key, attempts=0,
                    max_attempts=max_attempts, created_at=now, updated_at=now,
                )
                for f in files
            ]
            s.add_all(rows)
            s.flush()
            return [Job.from_row(r) for r in rows]

    def find_by_idempotency_key(self, principal: str, key: str) -> list[Job]:
        with self.session() as s:
            rows = s.scalars(
                select(JobRow).where(JobRow.principal == principal, JobRow.idempotency_key == key)
                .order_by(JobRow.created_at, JobRow.id)
            )
            return [Job.from_row(r) for r in rows]

    def get_job(self, job_id: str, principal: str | None = None) -> Job | None:
        """The job, or None when absent or owned by another principal (callers answer 404)."""
        with self.session() as s:
            row = s.get(JobRow, job_id)
            if row is None or (principal is not None and row.principal != principal):
                return None
            return Job.from_row(row)

    def list_jobs(self, principal: str, limit: int, after: tuple[datetime, str] | None = None,
                  status: str | None = None) -> list[Job]:
        """The principal's jobs, newest first, at most ``limit``; ``after`` = (created_at,
        id) of the last job of the previous page (keyset pagination: stable while jobs are
        added)."""
        with self.session() as s:
            q = select(JobRow).where(JobRow.principal == principal)
            if status:
                q = q.where(JobRow.status == status)
            if after is not None:
                created, last_id = after
                q = q.where(or_(JobRow.created_at < created,
                                and_(JobRow.created_at == created, JobRow.id < last_id)))
            q = q.order_by(JobRow.created_at.desc(), JobRow.id.desc()).limit(limit)
            return [Job.from_row(r) for r in s.execute(q).scalars()]

    def delete_job(self, job_id: str, principal: str) -> tuple[str, str, str | None] | None:
        """Delete a job of ``principal`` that is not running; returns (status, upload path,
        heatmaps path) of what was deleted, ``("running", "", None)`` when it is running
        (left alone), or None when there is no such job."""
        with self.session() as s:
            row = s.get(JobRow, job_id)
            if row is None or row.principal != principal:
                return None
            result = s.get(ResultRow, job_id)
            found = (row.status, row.upload_path, result.heatmaps_path if result else None)
            # Conditional on the status, in the same transaction: a queued job claimed by a
            # worker since the read above is left alone.
            res = s.execute(delete(JobRow).where(JobRow.id == job_id,
                                                 JobRow.status != "running"))
            if not res.rowcount:  # type: ignore[attr-defined]
                return ("running", "", None)
        self.delete_jobs([job_id])  # its result row and a now unused Idempotency-Key
        return found

    def get_result(self, job_id: str) -> ResultRow | None:
        with self.session() as s:
            return s.get(ResultRow, job_id)

    def queue_activity(self) -> tuple[datetime | None, datetime | None]:
        """(creation time of the oldest queued job, last change of any job that left the
        queue): a queue is stalled when the first is old and the second is too."""
        with self.session() as s:
            oldest = s.execute(select(func.min(JobRow.created_at))
                               .where(JobRow.status == "queued")).scalar()
            latest = s.execute(select(func.max(JobRow.updated_at))
                               .where(JobRow.status != "queued")).scalar()
        return _aware(oldest), _aware(latest)

    def queue_counts(self) -> dict[str, int]:
        with self.session() as s:
            rows = s.execute(select(JobRow.status, func.count()).group_by(JobRow.status))
            counts = {st: 0 for st in JOB_STATUSES}
            counts.update({st: int(n) for st, n in rows})
            return counts

    def claim(self, owner: str, lease_s: float, job_id: str | None = None) -> Job | None:
        """Atomically take the oldest claimable job (or ``job_id``) and lease it to ``owner``.

        Claimable: queued, or running with an expired lease (its worker died). A job that
        has used all its attempts is failed instead and the next one is tried.
        """
        for _ in range(50):  # bounded: each round either claims, fails one job, or ends
            now = utcnow()
            claimable = or_(
                JobRow.status == "queued",
                (JobRow.status == "running") & (JobRow.lease_expires_at < now),
            )
            with self.session() as s:
                q = select(JobRow.id, JobRow.attempts, JobRow.max_attempts, JobRow.error).where(
                    claimable
                )
                q = q.where(JobRow.id == job_id) if job_id else q.order_by(JobRow.created_at)
                cand = s.execute(q.limit(1)).first()
                if cand is None:
                    return None
                cid, attempts, max_attempts, error = cand
                if attempts >= max_attempts:
                    res = s.execute(
                        update(JobRow).where(JobRow.id == cid, claimable).values(
                            status="failed", finished_at=now, updated_at=now, lease_owner=None,
                            error=error or {
                                "code": "worker_lost",
                                "message": f"the worker died or hung {attempts} time(s)",
                            },
                        )
                    )
                    continue
                res = s.execute(
                    update(JobRow).where(JobRow.id == cid, claimable).values(
                        status="running", attempts=JobRow.attempts + 1, lease_owner=owner,
                        lease_expires_at=now + timedelta(seconds=lease_s), updated_at=now,
                    )
                )
                if res.rowcount != 1:  # type: ignore[attr-defined]
                    continue  # someone else claimed it between select and update
                row = s.get(JobRow, cid)
                assert row is not None
                s.refresh(row)
                return Job.from_row(row)
        return None

    def heartbeat(self, job_ids: list[str], owner: str, lease_s: float) -> None:
        if not job_ids:
            return
        now = utcnow()
        with self.session() as s:
            s.execute(
                update(JobRow)
                .where(JobRow.id.in_(job_ids), JobRow.lease_owner == owner,
                       JobRow.status == "running")
                .values(lease_expires_at=now + timedelta(seconds=lease_s))
            )

    def set_progress(self, job_id: str, owner: str, progress: float, stage: str | None) -> None:
        with self.session() as s:
            s.execute(
                update(JobRow)
                .where(JobRow.id == job_id, JobRow.lease_owner == owner, JobRow.status == "running")
                .values(progress=max(0.0, min(1.0, progress)),
                        stage=stage[:100] if stage else stage, updated_at=utcnow())
            )

    def save_result(
        self, job_id: str, result: dict[str, Any], heatmaps_path: str | None
    ) -> None:
        """Upsert the result row (idempotent), then mark the job finished."""
        now = utcnow()
        error = result.get("error")
        if self.engine.dialect.name == "postgresql":
            from sqlalchemy.dialects.postgresql import insert as upsert
        else:
            from sqlalchemy.dialects.sqlite import insert as upsert  # type: ignore[assignment]
        with self.session() as s:
            # One atomic INSERT .. ON CONFLICT DO UPDATE: duplicate deliveries of the same
            # job racing each other (a read-then-insert raised a unique violation) all land.
            ins = upsert(ResultRow).values(job_id=job_id, result=result,
                                           heatmaps_path=heatmaps_path, written_at=now)
            s.execute(ins.on_conflict_do_update(
                index_elements=[ResultRow.job_id],
                set_={"result": ins.excluded.result,
                      "heatmaps_path": ins.excluded.heatmaps_path,
                      "written_at": ins.excluded.written_at},
            ))
            s.execute(
                update(JobRow).where(JobRow.id == job_id).values(
                    status="failed" if error else "succeeded", progress=1.0, stage=None,
                    error=error, finished_at=now, updated_at=now, lease_owner=None,
                    lease_expires_at=None,
                )
            )

    def release_for_retry(self, job_id: str, owner: str, error: dict[str, Any],
                          retry: bool = True) -> Job | None:
        """The attempt crashed/hung: queue again, or fail once attempts are spent (at once
        with ``retry=False``)."""
        now = utcnow()
        with self.session() as s:
            row = s.get(JobRow, job_id)
            if row is None or row.lease_owner != owner or row.status != "running":
                return None
            if not retry or row.attempts >= row.max_attempts:
                row.status, row.finished_at = "failed", now
            else:
                row.status = "queued"
            row.error, row.updated_at = error, now
            row.lease_owner, row.lease_expires_at = None, None
            row.progress, row.stage = 0.0, None
            s.flush()
            return Job.from_row(row)

    def requeue_running(self, owner_prefix: str | None = None) -> int:
        """Put running jobs back in the queue (at startup: their worker was this server).

        The interrupted attempt is not counted: a restart is not the file's fault.
        """
        with self.session() as s:
            q = update(JobRow).where(JobRow.status == "running")
            if owner_prefix:
                q = q.where(JobRow.lease_owner.like(owner_prefix + "%"))
            res = s.execute(q.values(
                status="queued", lease_owner=None, lease_expires_at=None, progress=0.0,
                stage=None, attempts=func.max(JobRow.attempts - 1, 0)
                if self.engine.dialect.name == "sqlite" else func.greatest(JobRow.attempts - 1, 0),
                updated_at=utcnow(),
            ))
            return int(res.rowcount)  # type: ignore[attr-defined]

    def job_ids(self, status: str) -> list[str]:
        with self.session() as s:
            return list(s.scalars(select(JobRow.id).where(JobRow.status == status)
                                  .order_by(JobRow.created_at)))

    def stale_queued_ids(self, older_than: datetime) -> list[str]:
        """Queued jobs not touched since ``older_than``, marked as touched now.

        Their broker message may be lost (a flushed Redis): the re-publisher sends them
        again. Touching them means one re-send per staleness period, not one per tick.
        """
        now = utcnow()
        with self.session() as s:
            ids = list(s.scalars(select(JobRow.id).where(
                JobRow.status == "queued", JobRow.updated_at < older_than)))
            if ids:
                s.execute(update(JobRow).where(JobRow.id.in_(ids), JobRow.status == "queued")
                          .values(updated_at=now))
            return ids

    def expired_running_ids(self) -> list[str]:
        with self.session() as s:
            return list(s.scalars(select(JobRow.id).where(
                JobRow.status == "running", JobRow.lease_expires_at < utcnow())))

    def claim_undelivered_webhooks(self, finished_before: datetime,
                                   stuck_before: datetime) -> list[str]:
        """Finished jobs whose webhook never got a final status (the process died between
        saving the result and delivering it), marked ``retrying``; ``retrying`` rows not
        updated since ``stuck_before`` (the redelivery itself died) are taken again."""
        now = utcnow()
        with self.session() as s:
            cond = (JobRow.webhook_url.is_not(None) & JobRow.finished_at.is_not(None)
                    & (((JobRow.webhook_status.is_(None)) & (JobRow.finished_at < finished_before))
                       | ((JobRow.webhook_status == "retrying")
                          & (JobRow.updated_at < stuck_before))))
            ids = list(s.scalars(select(JobRow.id).where(cond)))
            if ids:
                s.execute(update(JobRow).where(JobRow.id.in_(ids), cond)
                          .values(webhook_status="retrying", updated_at=now))
            return ids

    def set_webhook_status(self, job_id: str, status: str) -> None:
        with self.session() as s:
            s.execute(update(JobRow).where(JobRow.id == job_id).values(webhook_status=status[:100]))

    def expired_jobs(self, older_than: datetime) -> list[tuple[str, str, str | None]]:
        """(job id, upload path, heatmaps path) of finished jobs older than the retention."""
        with self.session() as s:
            rows = s.execute(
                select(JobRow.id, JobRow.upload_path, ResultRow.heatmaps_path)
                .join(ResultRow, ResultRow.job_id == JobRow.id, isouter=True)
                .where(JobRow.finished_at.is_not(None), JobRow.finished_at < older_than)
            )
            return [(a, b, c) for a, b, c in rows]

    def delete_jobs(self, job_ids: list[str]) -> None:
        if not job_ids:
            return
        with self.session() as s:
            s.execute(delete(ResultRow).where(ResultRow.job_id.in_(job_ids)))
            s.execute(delete(JobRow).where(JobRow.id.in_(job_ids)))
            # An Idempotency-Key whose jobs are all gone may be used again.
            s.execute(delete(IdempotencyRow).where(~(
                select(JobRow.id).where(JobRow.principal == IdempotencyRow.principal,
                                        JobRow.idempotency_key == IdempotencyRow.key)
                .exists())))

    def delete_old_usage(self, before_day: str) -> None:
        with self.session() as s:
            s.execute(delete(UsageRow).where(UsageRow.day < before_day))


def dumps(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))
