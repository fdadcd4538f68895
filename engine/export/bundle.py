"""Several formats into one folder, as the app's Export dialog writes them.

``out/annotations.json`` (or ``out/coco/`` self-contained), ``out/png_masks/``, ``out/yolo/``,
``out/labelme/`` and ``out/overlays/``, each written by :func:`engine.export.export_project` or
:mod:`engine.export.overlays`. The overlays are drawn first and put in place last, so a failed
dataset leaves no new overlays behind (each format is itself all or nothing).
"""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from ..errors import ExportError
from ..project import ImageRecord, Project
from . import export_project
from .overlays import staged_overlays

__all__ = ["ExportOptions", "ExportSummary", "run_export"]


@dataclass(frozen=True)
class ExportOptions:
    out_dir: Path
    coco: bool = True
    coco_polygons: bool = False  # RLE (exact, keeps holes) by default; polygons keep holes as keyholes
    png_masks: bool = True
    yolo: bool = False  # YOLO segmentation (labels, classes.txt, data.yaml, images linked)
    labelme: bool = False  # one LabelMe JSON per image
    overlays: bool = True
    only_accepted: bool = True
    images: tuple[ImageRecord, ...] | None = None  # None: every image of the project
    overwrite: bool = False  # replace a format's folder even when it holds files of something else
    self_contained: bool = False  # copy the images (upright) into each dataset; COCO goes to coco/


@dataclass
class ExportSummary:
    lines: list[str] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)
    coco_file: Path | None = None

    def __str__(self) -> str:
        return "\n".join(self.lines)


def run_export(project: Project, options: ExportOptions, say: Callable[[str], None] = lambda _t: None) -> ExportSummary:
    """Write the chosen formats under ``options.out_dir``; ExportError when nothing can be exported."""
    if not (options.coco or options.png_masks or options.yolo or options.labelme or options.overlays):
        raise ExportError("Choose at least one export format.")
    out = Path(options.out_dir).expanduser()
    summary = ExportSummary()
    selection = list(options.images) if options.images is not None else None
    copy, only, overwrite = options.self_contained, options.only_accepted, options.overwrite
    overlays = (staged_overlays(project, out / "overlays", selection, only_accepted=only, overwrite=overwrite,
                                say=say) if options.overlays else nullcontext())
    with overlays as staged:
        if options.coco:
            say("writing COCO annotations")
            report = export_project(project, "coco", out / "coco" if copy else out / "annotations.json",
                                    image_filter=selection, polygons=options.coco_polygons, only_accepted=only,
                                    self_contained=copy, overwrite=overwrite)
            summary.lines.append(str(report))
            summary.files += report.files
            summary.coco_file = report.out
        for fmt, wanted, folder, name in (("png", options.png_masks, "png_masks", "PNG masks"),
                                          ("yolo", options.yolo, "yolo", "YOLO files"),
                                          ("labelme", options.labelme, "labelme", "LabelMe files")):
            if wanted:
                say(f"writing {name}")
                report = export_project(project, fmt, out / folder, image_filter=selection, only_accepted=only,
                                        self_contained=copy, overwrite=overwrite)
                summary.lines.append(str(report))
                summary.files += report.files
        if staged is not None:
            files = staged.commit()
            summary.lines.append(f"Wrote {len(files)} overlay image(s) to {out / 'overlays'}.")
            summary.files += files
    return summary
