"""Settings for bench/api_trigger.py: Cronhouse's own settings, with a URLconf that adds one
trivial Django view (bench/api_trigger_urls.py) served by the same gunicorn as the reference."""

from config.settings import *  # noqa: F403

ROOT_URLCONF = "bench.api_trigger_urls"
