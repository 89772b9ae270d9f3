"""``hwnas worker``: claims queued search jobs and runs them.

Many workers, on one machine or many, may share a database. Each claims a job
(see ``service.domain.jobs`` for the locking), then a heartbeat thread keeps
the lease alive while the search runs. If the heartbeat finds the job is no
longer ours (cancelled, or the lease expired and another worker took it), the
search is stopped after its current evaluation. A worker that dies simply stops
heartbeating: once its lease expires the job goes back to the queue and is
resumed elsewhere from its stored trials.

A worker claims only jobs that any host may run and those bound to its own
host (:func:`predictors.latency.measure.host_name`, ``HWNAS_HOST`` overrides
it): a search on a local device measures latencies on that machine.

A lost database connection (server restart, failover) is not the job's fault:
the worker's own bookkeeping is retried, and a job whose work failed for such
a transient reason is given back to the queue (fenced by its lease) and
resumed from its stored trials, instead of failing.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import traceback
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from service.db.transient import is_transient, retrying
from service.domain import jobs
from service.orchestration.search import JobAborted, SearchCache, execute_search
from service.runtime import Runtime

__all__ = ["JobRunner", "Worker", "default_worker_id"]

log = logging.getLogger("hwnas.worker")

#: Runs one job: (rt, job_id, should_stop, on_progress) -> result JSON.
JobRunner = Callable[[Runtime, int, Callable[[], bool], Callable[[int], None]], dict[str, Any]]


def _host_name() -> str:
    from predictors.latency.measure import host_name

    return host_name()


def default_worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


@dataclass
class Worker:
    rt: Runtime
    worker_id: str = field(default_factory=default_worker_id)
    #: Runs a job; None: the search (with this worker's :attr:`cache`).
    runner: JobRunner | None = None
    #: Latency models and featurised architectures kept from job to job.
    cache: SearchCache = field(default_factory=SearchCache)
    stop_event: threading.Event = field(default_factory=threading.Event)
    #: The machine this worker measures on (jobs bound to another host are not claimed).
    host: str = field(default_factory=lambda: _host_name())

    def run(self, *, max_jobs: int | None = None, exit_when_idle: bool = False) -> int:
        """Process jobs until stopped, ``max_jobs`` are done, or (with
        ``exit_when_idle``) the queue is empty. Returns the number of jobs run."""
        done = 0
        settings = self.rt.settings
        while not self.stop_event.is_set() and (max_jobs is None or done < max_jobs):
            try:
                job_id = retrying(self._claim, what="claiming a job")
            except Exception as exc:
                if not is_transient(exc):
                    raise
                log.warning("database unavailable (%s); waiting", type(exc).__name__)
                self.stop_event.wait(settings.worker_poll_s)
                continue
            if job_id is None:
                if exit_when_idle:
                    break
                self.stop_event.wait(settings.worker_poll_s)
                continue
            self.run_one(job_id)
            done += 1
        return done

    def _claim(self) -> int | None:
        settings = self.rt.settings
        with self.rt.session() as s:
            job = jobs.claim_next_job(
                s,
                self.worker_id,
                lease_s=settings.worker_lease_s,
                max_attempts=settings.job_max_attempts,
                host=self.host,
            )
            return None if job is None else job.id

    def run_one(self, job_id: int) -> None:
        settings = self.rt.settings
        lost = threading.Event()
        finished = threading.Event()
        progress: dict[str, int] = {"n": 0}
        spec_total = retrying(lambda: self._total(job_id), what="reading the job")

        def beat() -> None:
            while not finished.wait(settings.worker_heartbeat_s):
                try:
                    with self.rt.session() as s:
                        ours = jobs.heartbeat(
                            s,
                            job_id,
                            self.worker_id,
                            lease_s=settings.worker_lease_s,
                            progress=progress["n"] / spec_total if spec_total else None,
                            n_evaluations=progress["n"],
                        )
                except Exception:  # a database hiccup: try again next beat
                    log.exception("heartbeat for job %s failed", job_id)
                    continue
                if not ours:
                    lost.set()
                    return

        def on_progress(n: int) -> None:
            progress["n"] = n

        thread = threading.Thread(target=beat, name=f"heartbeat-{job_id}", daemon=True)
        thread.start()
        log.info("worker %s runs job %s", self.worker_id, job_id)

        def should_stop() -> bool:
            return lost.is_set() or self.stop_event.is_set()

        try:
            if self.runner is None:
                result = execute_search(
                    self.rt,
                    job_id,
                    should_stop=should_stop,
                    on_progress=on_progress,
                    cache=self.cache,
                )
            else:
                result = self.runner(self.rt, job_id, should_stop, on_progress)
        except JobAborted:
            log.warning("job %s stopped: cancelled or lease lost", job_id)
            return
        except Exception as exc:
            if is_transient(exc):
                log.warning("job %s interrupted by the database (%s); requeued", job_id, exc)
                reason = f"resumed after a transient database error: {type(exc).__name__}"
                self._write(job_id, lambda s: jobs.release_job(s, job_id, self.worker_id, reason))
                return
            log.exception("job %s failed", job_id)
            error = f"{type(exc).__name__}: {exc}\n{traceback.format_exc()}"
            self._write(job_id, lambda s: jobs.fail_job(s, job_id, self.worker_id, error))
            return
        finally:
            finished.set()
            thread.join()

        def finish(s: Any) -> bool:
            jobs.heartbeat(
                s,
                job_id,
                self.worker_id,
                lease_s=settings.worker_lease_s,
                n_evaluations=result.get("n_evaluations"),
            )
            awaiting = (result.get("verification") or {}).get("status") == "awaiting"
            done = jobs.await_verification if awaiting else jobs.complete_job
            return done(s, job_id, self.worker_id, result)

        if not self._write(job_id, finish):
            log.warning("job %s finished but is no longer ours; result dropped", job_id)

    def _write(self, job_id: int, change: Callable[[Any], bool]) -> bool:
        """One fenced state change of the job, retried over lost connections.
        If the database stays away, the lease expires and the job is resumed."""

        def once() -> bool:
            with self.rt.session() as s:
                return change(s)

        try:
            return retrying(once, what=f"updating job {job_id}")
        except Exception as exc:
            if not is_transient(exc):
                raise
            log.error("could not update job %s (%s); its lease will expire", job_id, exc)
            return False

    def _total(self, job_id: int) -> int:
        with self.rt.session() as s:
            spec = jobs.get_job(s, job_id).spec
        return int(spec.get("n_evaluations", 0))
