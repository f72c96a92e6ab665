"""The admin's date hierarchy (the only user of these two names) in the one format of every page:
``2026`` › ``2026-12`` › ``2026-12-06``, not ``December 2026`` › ``December 6``. The day links
carry their year too, so every date on a page reads the same way. Other names keep Django's
English formats; the pages themselves format through ``core.formatting``."""

YEAR_MONTH_FORMAT = "Y-m"
MONTH_DAY_FORMAT = "Y-m-d"
