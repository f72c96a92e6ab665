"""Billing writes, one module per job family. Functions are keyword-only and take ``now``."""
