"""accounts' batch size (``ACCOUNTS_BATCH_SIZE``); the batching itself is ``core.batching``."""

from __future__ import annotations

from django.conf import settings

from core.batching import batch_size_checked


def batch_size(value: int | None = None) -> int:
    return batch_size_checked(value or settings.ACCOUNTS_BATCH_SIZE)
