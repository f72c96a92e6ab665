"""What the job platform announces. Other apps listen; ``jobs`` imports none of them."""

from django.dispatch import Signal

# Sent after the transaction that ended a run commits.
# kwargs: run (JobRun), final (bool: no retry follows this attempt).
run_finished = Signal()
