"""Where an image's changes go: the :class:`AnnotationStore` an :class:`ImageAnnotation` writes through.

The app's workspace is one (it also reports failures in the window); :class:`ProjectStore` is
the plain one over a project, for scripts, tests and headless tools.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Protocol

from ..project import ImageRecord, Project

if TYPE_CHECKING:
    from .state import ImageAnnotation

__all__ = ["AnnotationStore", "ProjectStore"]


class AnnotationStore(Protocol):
    """Where an image's changes go (the app's workspace; a plain :class:`ProjectStore` elsewhere).

    ``classes()`` is the project's class list (names, in id order); ``last_category`` the class
    used last (a question's proposals take it when their noun names no class)."""

    default_alpha: float
    last_category: str | None

    def image_record(self, image: "ImageAnnotation", refresh: bool = False) -> ImageRecord: ...

    def write(self, change: Callable[[Project], Any]) -> bool: ...

    def classes(self) -> list[str]: ...

    def remember_category(self, name: str) -> None: ...


class AnnotationListener(Protocol):
    """Who hears of an image's changes (the app's Qt signals: ``gui.workspace.session``)."""

    def notify(self, aspect: str) -> None: ...

    def notify_object(self, uid: str, what: str) -> None: ...


class ProjectStore:
    """An :class:`AnnotationStore` straight over a project (scripts, tests, headless tools)."""

    def __init__(self, project: Project, default_alpha: float = 0.5) -> None:
        self.project, self.default_alpha = project, default_alpha
        self.last_category: str | None = None
        self._records: dict[int, ImageRecord] = {}

    def image_record(self, image: "ImageAnnotation", refresh: bool = False) -> ImageRecord:
        if refresh or image.image_id not in self._records:
            self._records[image.image_id] = self.project.get_image(image.image_id, records=refresh) \
                or ImageRecord(path=self.project.rel_path(image.path), id=image.image_id)
        return self._records[image.image_id]

    def write(self, change: Callable[[Project], Any]) -> bool:
        change(self.project)
        return True

    def classes(self) -> list[str]:
        return [c.name for c in self.project.categories]

    def remember_category(self, name: str) -> None:
        self.last_category = name
