"""Overlay images of an export: one PNG per exported object, the image with its question's heat
map, its mask and its points (:func:`engine.imaging.overlay.render_overlay`).

The overlays' folder is their own, like a dataset format's (:mod:`engine.export.staging`): it
ends up holding this export's overlays only. They are drawn into a staging folder first and put
in place by :meth:`StagedOverlays.commit`, so an export that writes a dataset too can draw them
(reading every image: what fails most) before the dataset, and show them only once everything
else is written: an export that fails leaves nothing new behind.
"""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterable, Iterator

from ..errors import ExportError
from ..imaging.images import load_image
from ..imaging.overlay import render_overlay, save_png
from ..project import ImageRecord, Project
from .common import ImageFilter, plan_export, unique_stem
from .staging import Staging

__all__ = ["StagedOverlays", "staged_overlays", "write_overlays"]

Say = Callable[[str], None]


class StagedOverlays:
    """Overlays drawn into a staging folder, not yet in place."""

    def __init__(self, stage: Staging, out: Path, count: int) -> None:
        self._stage, self.out, self.count = stage, out, count

    def commit(self) -> list[Path]:
        """Put the overlays in ``out`` (replacing an earlier export's); returns their paths."""
        try:
            return self._stage.commit()
        except OSError as err:
            raise _cannot_write(self.out, err) from err


@contextmanager
def staged_overlays(project: Project, out: str | Path,
                    image_filter: ImageFilter | Iterable[ImageRecord] | None = None, *,
                    only_accepted: bool = False, overwrite: bool = False,
                    say: Say = lambda _t: None) -> Iterator[StagedOverlays]:
    """Draw the overlays of the objects an export of ``image_filter`` would write (the accepted
    ones with ``only_accepted``) into a staging folder for ``out``. Nothing appears in ``out``
    unless the caller commits; leaving the block without committing (or by an error) removes
    them. ExportError when there is no mask to draw, an image cannot be read, or ``out`` cannot
    be written (or holds other files, unless ``overwrite``)."""
    out = Path(out).expanduser().absolute()
    plan = plan_export(project, image_filter, only_accepted=only_accepted)
    if plan.n_annotations == 0:
        raise ExportError("Nothing to draw: no " + ("accepted " if only_accepted else "") + "masks.")
    with Staging(out, owns=True, overwrite=overwrite, fmt="overlays") as stage:
        used: set[str] = set()
        count = 0
        try:
            for entry in plan.loaded():
                if not entry.items:
                    continue
                say(f"overlay of {entry.image.name}")
                rgb = load_image(entry.abs_path).rgb
                for item in entry.items:
                    stem = unique_stem(f"{entry.stem}_{item.category.name}", used)
                    heat = None if item.run is None else item.run.heatmap
                    save_png(stage.root / f"{stem}.png",
                             render_overlay(rgb, heat=heat, mask=item.mask, points=item.obj.points))
                    count += 1
        except OSError as err:
            raise _cannot_write(out, err) from err
        yield StagedOverlays(stage, out, count)


def write_overlays(project: Project, out: str | Path,
                   image_filter: ImageFilter | Iterable[ImageRecord] | None = None, *,
                   only_accepted: bool = False, overwrite: bool = False, say: Say = lambda _t: None) -> list[Path]:
    """Draw and put in place the overlays of ``project`` in ``out`` (see :func:`staged_overlays`)."""
    with staged_overlays(project, out, image_filter, only_accepted=only_accepted, overwrite=overwrite,
                         say=say) as staged:
        return staged.commit()


def _cannot_write(out: Path, err: OSError) -> ExportError:
    return ExportError(f"Cannot write the overlays to {out}: {err.strerror or err}. Nothing was written.")
