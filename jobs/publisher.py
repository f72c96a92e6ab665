"""Send the HTTP trigger's Celery messages from one background thread per process, in batches.

Measured on the 2-core machine: ``send_task`` costs 0.6-0.7 ms of CPU and a broker round
trip per message, the largest part of a ``POST /api/jobs/run`` once the run's INSERT is one
statement. Here the request commits its run, answers 202 and hands the message to this thread.
Every FLUSH_SECONDS the thread sends what has accumulated: on Redis as
messages filled into a template Celery made once for this process and pushed with one LPUSH
(``jobs.task_message``, tens of microseconds each); on other brokers, and for a message the
template cannot express, with ``send_task`` in one kombu ``Producer.batch``.

What stays true:

* a run is committed before its message exists (callers submit from ``on_commit``);
* a batch that fails to send has ``dispatched_at`` cleared on all its runs, so process-jobs
  sends them once the broker is back (a message that did go out twice finds nothing to
  claim the second time);
* a process that exits normally sends what is queued first (``atexit``); one that is killed
  leaves runs that look sent, which process-jobs re-sends after JOBS_REDISPATCH_AFTER_SECONDS,
  as it always did for a crash between commit and publish;
* a forked child (gunicorn worker, Celery pool process) starts its own thread, queue and
  template: the parent's template names the parent's pid and holds its sockets.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
from collections import deque

from celery import current_app
from django.db import connections

from .task_message import TaskMessages

logger = logging.getLogger(__name__)

# Messages per batch: bounds one batch's memory and how many runs one failure resends.
MAX_BATCH = 500
# How long exit waits for the thread to send what is queued.
EXIT_WAIT_SECONDS = 10.0
# How often the thread sends what has been submitted. Under load runs commit every fraction
# of a millisecond; waking the thread (and writing to the broker) per message cost the request
# path ~0.2-0.3 ms of CPU each on the 2-core VM, a wake-up and a syscall costing more there than
# rendering the message. A message waits 25 ms on average, which nobody waiting on a job notices.
FLUSH_SECONDS = 0.05
_NOT_BUILT = object()


class Publisher:
    def __init__(self, task_name: str) -> None:
        self.task_name = task_name
        self._pending: deque = deque()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._pid: int | None = None
        self._lock = threading.Lock()
        self._messages = _NOT_BUILT

    def submit(self, run_id: int, **send_options) -> None:
        """Queue the message of committed run ``run_id``; ``send_options`` are send_task's."""
        self._ensure_thread()
        # No wake-up of the thread per message (it looks every FLUSH_SECONDS): a deque append
        # is atomic and costs the request nothing more.
        self._pending.append((run_id, send_options))

    def _ensure_thread(self) -> None:
        # A forked child (gunicorn worker, Celery pool process) has the deque but not the thread.
        if self._pid == os.getpid() and self._thread is not None:
            return
        with self._lock:
            if self._pid != os.getpid() or self._thread is None:
                self._pending = deque()
                self._stopping = threading.Event()
                self._messages = _NOT_BUILT
                self._thread = threading.Thread(target=self._loop, name="jobs-publisher", daemon=True)
                self._thread.start()
                self._pid = os.getpid()
                atexit.register(self.stop)

    def stop(self, timeout: float = EXIT_WAIT_SECONDS) -> None:
        """Send what is queued, then end the thread (at exit, and in tests)."""
        thread = self._thread
        if thread is None or self._pid != os.getpid() or not thread.is_alive():
            return
        self._stopping.set()
        thread.join(timeout)
        self._thread = None

    def _loop(self) -> None:
        while not self._stopping.wait(FLUSH_SECONDS):
            self._flush()
        self._flush()

    def _flush(self) -> None:
        while self._pending:
            batch = []
            while self._pending and len(batch) < MAX_BATCH:
                batch.append(self._pending.popleft())
            self._send(batch)

    def _send(self, batch: list) -> None:
        try:
            self._publish(batch)
        except Exception as exc:  # kombu raises many types for one meaning: not sent
            ids = [run_id for run_id, _ in batch]
            logger.warning("dispatch failed for %d runs (%s); process-jobs will retry", len(ids), type(exc).__name__)
            _forget_dispatch(ids)

    def _publish(self, batch: list) -> None:
        messages = self._task_messages()
        rendered, unrendered = [], []
        for run_id, options in batch:
            if messages is not None and messages.can_render(run_id, options):
                rendered.append(messages.render(run_id, **options))
            else:
                unrendered.append((run_id, options))
        if rendered:
            messages.push(rendered)
        if unrendered:
            with current_app.producer_or_acquire() as producer, producer.batch():
                for run_id, options in unrendered:
                    current_app.send_task(self.task_name, args=[run_id], producer=producer, **options)

    def _task_messages(self) -> TaskMessages | None:
        # Built by the thread on first use (it needs the broker; a failure fails that batch and
        # the next one tries again). The template's reply_to is this thread's, as send_task's was.
        if self._messages is _NOT_BUILT:
            self._messages = TaskMessages.for_app(current_app, self.task_name)
        return self._messages


def _forget_dispatch(run_ids: list[int]) -> None:
    from .models import JobRun

    try:
        JobRun.objects.filter(pk__in=run_ids, status=JobRun.Status.QUEUED).update(dispatched_at=None)
    except Exception:
        # dispatched_at stays set: process-jobs re-sends after JOBS_REDISPATCH_AFTER_SECONDS.
        logger.exception("could not mark %d unsent runs", len(run_ids))
    finally:
        # This thread's own connection: not held between (rare) failures.
        connections.close_all()
