"""Run per-file feature jobs of a bench script in worker processes, reporting progress."""

from __future__ import annotations

import multiprocessing as mp
from collections.abc import Callable, Sequence
from typing import TypeVar

Job = TypeVar("Job")


def run_jobs(work: Callable[[Job], str | None], jobs: Sequence[Job],
             done: Callable[[Job], bool], workers: int = 2, chunksize: int = 2,
             every: int = 100) -> list[str]:
    """``work`` over the ``jobs`` not yet ``done`` (cached), in ``workers`` spawned
    processes (onnxruntime sessions do not survive a fork); prints how many are left, each
    error line ``work`` returns and a count every ``every`` jobs. Returns the errors."""
    todo = [j for j in jobs if not done(j)]
    print(f"{len(jobs)} jobs, {len(todo)} to compute", flush=True)
    errors: list[str] = []
    if not todo:
        return errors
    with mp.get_context("spawn").Pool(max(1, workers)) as pool:
        for n, err in enumerate(pool.imap_unordered(work, todo, chunksize=chunksize), 1):
            if err:
                errors.append(err)
                print("unreadable:", err, flush=True)
            if n % every == 0:
                print(f"  {n}/{len(todo)}", flush=True)
    return errors
