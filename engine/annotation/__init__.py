"""The annotation core, without Qt: an image's objects and question runs, and every edit as a command.

- :mod:`.state`: :class:`ImageAnnotation`, one image: its objects (:mod:`.object_state`), its
  question runs (:mod:`.run_state`), the selection; written to the project as it changes;
  :mod:`.asking`: a question's results arriving and the objects they propose;
- :mod:`.edits` and :mod:`.object_edits`: the edits (prompts, candidate, alpha, class,
  acceptance; new, delete, keep, merge, reorder objects) with do and undo, and
  :class:`History`, their undo history; an edit that changes a mask un-accepts it;
- :mod:`.corrections`: each object's brush add and erase layers over the model's mask (the
  final mask is ``(model | add) & ~erase``) and their edits (stroke, whole new mask, clear);
- :mod:`.annotator`: :class:`Annotator`, the same pieces driven from a script or notebook;
- :mod:`.chain`, :mod:`.pipeline`: the chain and the models (:mod:`.pipeline_protocol`: what the
  chain and its callers call on a pipeline); :mod:`.proposals`: one object per hot region of a
  heat map; :mod:`.class_match`: the class a question names.

The app wraps these thinly (a QObject that emits what changed, a QUndoStack around the edits);
scripts and tests use them as they are.
"""

from .edits import (ChooseCandidate, Edit, EditTarget, Group, History, SetAccepted, SetAlpha, SetCategory,
                    SetPrompts)
from .object_edits import AddObject, DeleteObjects, KeepProposal, Reorder, accept_all, merge_objects, new_object
from .prompts import PromptState
from .candidates import prepare_candidates
from .state import AnswerView, ImageAnnotation
from .stores import AnnotationStore, ProjectStore
from .annotator import Annotator

__all__ = ["EditTarget", "History", "Edit", "Group", "SetAccepted", "SetAlpha", "SetCategory", "SetPrompts",
           "ChooseCandidate", "AddObject", "DeleteObjects", "KeepProposal", "Reorder", "accept_all", "merge_objects",
           "new_object", "PromptState", "AnswerView", "ImageAnnotation", "prepare_candidates", "AnnotationStore",
           "ProjectStore", "Annotator"]
