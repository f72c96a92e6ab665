"""What the job platform announces. Other apps listen; ``jobs`` imports none of them."""

from django.dispatch import Signal

# Sent after the transaction that ended a run commits.
# kwargs: run (JobRun), final (bool: no retry follows this attempt).
run_finished = Signal()

# Sent by process-jobs (and the leading beat) once per pass that opened or closed late episodes:
# each job once when it becomes late and once when it stops being late, all of the pass together
# (after downtime, thousands at once).
# kwargs: started and ended (lists of (Job, the missed slot's datetime)), now (datetime).
lateness_changed = Signal()

# Sent by process-jobs once when a still-running run passes its job's expected duration
# (a run that ends slow is announced through run_finished with ``run.slow`` set).
# kwargs: run (JobRun).
run_slow = Signal()
