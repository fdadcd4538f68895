"""The annotation core, without Qt: one image's editable state and every edit as a command.

- :mod:`.prompts`: :class:`PromptState`, the points and box given to the mask decoder;
- :mod:`.state`: :class:`ImageAnnotation`, what one image shows and what a person made of it
  (:mod:`.asking`: a question asked and its stage results arriving),
  written to the project as it changes (:mod:`.project_record`: writing and restoring its record);
- :mod:`.edits`: the edits (prompts, candidate, alpha, label, acceptance) with do and undo,
  and :class:`History`, their undo history; an edit that changes the mask un-accepts it;
- :mod:`.corrections`: the brush's add and erase layers over the model's mask (the final mask
  is ``(model | add) & ~erase``) and their edits (stroke, whole new mask, clear strokes).

The app wraps these thinly (a QObject that emits what changed, a QUndoStack around the edits);
scripts and tests use them as they are.
"""

from .edits import (EditTarget, History, SetAccepted, SetAlpha, SetLabel, SetPrompts, ChooseCandidate,
                    Edit)
from .prompts import PromptState
from .candidates import prepare_candidates
from .state import AnswerView, ImageAnnotation, typed_label
from .stores import AnnotationStore, ProjectStore

__all__ = ["EditTarget", "History", "Edit", "SetAccepted", "SetAlpha", "SetLabel", "SetPrompts", "ChooseCandidate",
           "PromptState", "AnswerView", "ImageAnnotation", "prepare_candidates", "typed_label", "AnnotationStore",
           "ProjectStore"]
