"""Two fewer indexes written on every JobRun status change.

* ``job_id``'s own index: jobs_jobrun_job_created leads with job_id and serves the same lookups.
  Dropped by its (deterministic) name in SQL, the field changed in state only: Django's
  AlterField(db_index=False) would also drop the partial unique index of
  jobs_jobrun_one_active_per_job, which is on job_id alone.
* ``retry_of``: a OneToOneField's unique index holds every run (NULLs included); a foreign key
  with a partial unique constraint holds retries only, with the same guarantee.
"""

import django.db.models.deletion
from django.db import migrations, models

JOB_INDEX = "jobs_jobrun_job_id_61274634"  # Django's name for jobrun.job's index, on every backend


class Migration(migrations.Migration):
    dependencies = [
        ("jobs", "0004_partial_fk_indexes"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="jobrun",
                    name="job",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="runs",
                        to="jobs.job",
                    ),
                ),
            ],
            database_operations=[
                migrations.RunSQL(
                    f"DROP INDEX IF EXISTS {JOB_INDEX}",
                    reverse_sql=f"CREATE INDEX {JOB_INDEX} ON jobs_jobrun (job_id)",
                ),
            ],
        ),
        migrations.AlterField(
            model_name="jobrun",
            name="retry_of",
            field=models.ForeignKey(
                blank=True,
                db_index=False,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="+",
                to="jobs.jobrun",
            ),
        ),
        migrations.AddConstraint(
            model_name="jobrun",
            constraint=models.UniqueConstraint(
                condition=models.Q(("retry_of__isnull", False)),
                fields=("retry_of",),
                name="jobs_jobrun_one_retry_per_run",
            ),
        ),
    ]
