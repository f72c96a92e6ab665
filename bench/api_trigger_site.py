"""Settings for bench/api_trigger.py: Cronhouse's own settings, with a URLconf that adds the
baseline view (bench/api_trigger_urls.py), so both sides run in the same gunicorn processes."""

from config.settings import *  # noqa: F403

ROOT_URLCONF = "bench.api_trigger_urls"
