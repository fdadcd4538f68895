"""Annotation projects: one SQLite file per project, written change by change.

- :mod:`.records`: images and categories as plain Python values; :mod:`.objects`: an image's
  objects (labelled instances); :mod:`.runs`: question runs, the evidence that proposes objects;
- :mod:`.store`: :class:`Project`, the SQLite store (reads, one-transaction writes, edit log);
  :mod:`.writes`: its writes, on records; :mod:`.database`: the file, its connections and
  transactions;
- :mod:`.schema`: the file's schema, its checks and migrations (:mod:`.legacy`: version-1
  question records converted into objects); :mod:`.tables`: the SQL of each kind of row;
- :mod:`.rows`: records to rows and back; :mod:`.codec`: records to JSON and back;
- :mod:`.interchange`: the JSON interchange file; :mod:`.from_chain`: a chain's run and proposals;
- :mod:`.relocate`: images that moved; :mod:`.review`: which object needs a person first.
"""

from .from_chain import proposals_from_chain, run_from_chain
from .objects import OBJECT_SOURCES, ObjectRecord, new_uid
from .records import (STATUSES, Category, ImageRecord, ImageStatus, RelocateReport, clean_label, displayed_size,
                      file_sha256, normalise_question, palette_color)
from .runs import PREVIOUS_ANSWERS_KEPT, PreviousAnswer, QuestionRun
from .store import ORDERS, PROJECT_SUFFIX, Edit, ImageRow, Project

__all__ = [
    "STATUSES", "Category", "ImageRecord", "ImageStatus", "RelocateReport", "clean_label", "displayed_size",
    "file_sha256", "normalise_question", "palette_color", "ObjectRecord", "OBJECT_SOURCES", "new_uid",
    "QuestionRun", "PreviousAnswer", "PREVIOUS_ANSWERS_KEPT", "proposals_from_chain", "run_from_chain",
    "ORDERS", "PROJECT_SUFFIX", "Edit", "ImageRow", "Project",
]
