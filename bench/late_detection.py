"""Late detection delay: from a slot's grace expiry to the late alert being queued. Goal: < 60 s.

The delay has two parts:

1. waiting for the leading beat's next lateness check (JOBS_LATENESS_CHECK_SECONDS, 20 s by
   default) -- measured end to end by bench/late_alert_delay.py, not here;
2. the tick's own work: finding the late jobs, opening their episodes and queueing one e-mail per
   job and recipient (``jobs.running.maintenance.lateness_process``) -- measured here.

The figure is part 2 for ``--jobs`` every-minute jobs that are all late at once (the worst case:
the whole fleet missed its slot, e.g. beat was down), measured on PostgreSQL with the
notifications app listening. Baseline, in the same run and on the same jobs: the same sweep when
none of them is late (every job ran for its slot), i.e. what each process-jobs tick already pays.

The benchmark owns a database (``cronhouse_bench_late``, recreated, dropped at the end).

    .venv/bin/python bench/late_detection.py [--jobs 500] [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
GOAL_SECONDS = 60.0


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--pg", default="postgres://postgres@127.0.0.1:5432")
    parser.add_argument("--database", default="cronhouse_bench_late")
    return parser.parse_args()


def prepare_database(args) -> str:
    from bench.runner_overhead import recreate_database

    recreate_database(args.pg, args.database)
    url = f"{args.pg}/{args.database}"
    env = {**os.environ, "DATABASE_URL": url, "CRONHOUSE_VAR_DIR": "/tmp/cronhouse-bench-late"}
    subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=BASE_DIR, env=env, check=True)
    return url


def main() -> None:
    args = parse_args()
    sys.path.insert(0, str(BASE_DIR))
    url = prepare_database(args)
    os.environ.update(DATABASE_URL=url, CRONHOUSE_VAR_DIR="/tmp/cronhouse-bench-late", LOG_LEVEL="WARNING")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    import logging

    logging.disable(logging.WARNING)  # one system-log line per alert would dominate the output
    from django.conf import settings
    from django.utils import timezone

    from jobs.models import Job
    from jobs.running.maintenance import lateness_process
    from notifications.models import Notification

    settings.JOBS_ALERT_RECIPIENTS = ["ops@example.com"]
    now = timezone.now()
    jobs = [Job(name=f"late-{i:05d}", command="test_job", cron_expression="* * * * *") for i in range(args.jobs)]
    Job.objects.bulk_create(jobs)  # bulk: no schedule rows written (the cron staged is unused), none needed here

    def sweep(at) -> float:
        started = time.perf_counter()
        lateness_process(now=at)
        return time.perf_counter() - started

    late_times, baseline_times = [], []
    for round_ in range(args.rounds):
        at = now + timedelta(minutes=round_ * 10)
        # Baseline: beat recorded every job's slot, so the sweep finds nothing to do.
        Job.objects.update(next_fire_at=at + timedelta(minutes=1), late_at=at + timedelta(minutes=2), late_since=None)
        baseline_times.append(sweep(at))
        # Figure: beat recorded nothing for three minutes; every job is late, episodes open and
        # alerts are queued.
        Job.objects.update(next_fire_at=at - timedelta(minutes=3), late_at=at - timedelta(minutes=2))
        before = Notification.objects.count()
        late_times.append(sweep(at))
        queued = Notification.objects.count() - before
        assert queued == args.jobs, f"expected {args.jobs} alerts, queued {queued}"
        Job.objects.update(late_since=None)

    from django.db import connections

    from bench.runner_overhead import drop_database

    connections.close_all()
    drop_database(args.pg, args.database)
    late, baseline = statistics.median(late_times), statistics.median(baseline_times)
    print(f"jobs: {args.jobs} every-minute jobs, all late at once; rounds: {args.rounds} (medians)")
    print(f"figure   - sweep that finds {args.jobs} late jobs and queues their alerts: {late:.3f} s")
    print(f"baseline - same sweep, no job late (what every tick pays anyway):        {baseline:.3f} s")
    print(f"ratio    - figure / baseline: {late / baseline:.1f}x")
    period = settings.JOBS_LATENESS_CHECK_SECONDS
    worst = period + late
    print(
        f"detection delay = wait for beat's next lateness check (0-{period:.0f} s) + sweep: "
        f"mean {period / 2 + late:.1f} s, worst {worst:.1f} s (goal < {GOAL_SECONDS:.0f} s: "
        f"{'met' if worst < GOAL_SECONDS else 'missed by ' + f'{worst - GOAL_SECONDS:.1f} s'}); "
        "bench/late_alert_delay.py measures it end to end"
    )


if __name__ == "__main__":
    main()
