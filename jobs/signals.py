"""What the job platform announces. Other apps listen; ``jobs`` imports none of them."""

from django.dispatch import Signal

# Sent after the transaction that ended a run commits.
# kwargs: run (JobRun), final (bool: no retry follows this attempt).
run_finished = Signal()

# Sent by process-jobs once when a job becomes late and once when it stops being late.
# kwargs: job (Job), late (bool), slot (the missed slot's datetime), now (datetime).
job_lateness_changed = Signal()

# Sent by process-jobs once when a still-running run passes its job's expected duration
# (a run that ends slow is announced through run_finished with ``run.slow`` set).
# kwargs: run (JobRun).
run_slow = Signal()
