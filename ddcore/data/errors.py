"""Data errors that say what was expected, where, and how to get it."""
from __future__ import annotations


class DatasetNotFoundError(FileNotFoundError):
    """No source held the dataset; the message names the expected files and places."""


class DatasetCorruptError(ValueError):
    """A file was there but failed its checksum or could not be parsed."""
