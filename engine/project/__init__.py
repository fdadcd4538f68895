"""Annotation projects: one SQLite file per project, written change by change.

- :mod:`.records`: images, questions and categories as plain Python values;
- :mod:`.store`: :class:`Project`, the SQLite store (reads, one-transaction writes, edit log);
- :mod:`.schema`: the file's schema, its checks and migrations;
- :mod:`.rows`: records to rows and back; :mod:`.codec`: records to JSON and back;
- :mod:`.interchange`: the JSON interchange file (and converting version-1 ``.qmask.json``);
- :mod:`.relocate`: images that moved; :mod:`.review`: which image needs a person first.
"""

from .records import (STATUSES, Category, ImageRecord, ImageStatus, PreviousAnswer, QuestionRecord, RelocateReport,
                      clean_label, default_label, displayed_size, file_sha256, normalise_question, record_from_chain)
from .store import ORDERS, PROJECT_SUFFIX, Edit, ImageRow, Project

__all__ = [
    "STATUSES", "Category", "ImageRecord", "ImageStatus", "PreviousAnswer", "QuestionRecord", "RelocateReport",
    "clean_label", "default_label", "displayed_size", "file_sha256", "normalise_question", "record_from_chain",
    "ORDERS", "PROJECT_SUFFIX", "Edit", "ImageRow", "Project",
]
