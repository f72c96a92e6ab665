"""Shared helpers every app may import (money, batching). It imports no app of this project."""
