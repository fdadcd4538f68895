"""What the Export dialog runs: engine.export for the dataset formats, engine.imaging.overlay for overlays.

The dataset logic (COCO RLE/polygons, PNG masks, categories) is ``engine.export``'s; overlay
images are ``engine.imaging.overlay.render_overlay`` of each exported mask. This module only chooses
which images go out and where the files land.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from engine.errors import ExportError
from engine.export import export_project
from engine.export.common import Staging, plan_export, unique_stem
from engine.imaging.images import load_image
from engine.imaging.overlay import render_overlay, save_png
from engine.project import ImageRecord, Project


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
    copy = options.self_contained
    if options.coco:
        say("writing COCO annotations")
        report = export_project(project, "coco", out / "coco" if copy else out / "annotations.json",
                                image_filter=selection, polygons=options.coco_polygons,
                                only_accepted=options.only_accepted, self_contained=copy, overwrite=options.overwrite)
        summary.lines.append(str(report))
        summary.files += report.files
        summary.coco_file = report.out
    if options.png_masks:
        say("writing PNG masks")
        report = export_project(project, "png", out / "png_masks", image_filter=selection,
                                only_accepted=options.only_accepted, self_contained=copy, overwrite=options.overwrite)
        summary.lines.append(str(report))
        summary.files += report.files
    for fmt, wanted, folder in (("yolo", options.yolo, "yolo"), ("labelme", options.labelme, "labelme")):
        if wanted:
            say(f"writing {fmt.upper() if fmt == 'yolo' else 'LabelMe'} files")
            report = export_project(project, fmt, out / folder, image_filter=selection,
                                    only_accepted=options.only_accepted, self_contained=copy,
                                    overwrite=options.overwrite)
            summary.lines.append(str(report))
            summary.files += report.files
    if options.overlays:
        files = write_overlays(project, out / "overlays", selection, options.only_accepted, say,
                               overwrite=options.overwrite)
        summary.lines.append(f"Wrote {len(files)} overlay image(s) to {out / 'overlays'}.")
        summary.files += files
    return summary


def write_overlays(project: Project, out: Path, selection, only_accepted: bool,
                   say: Callable[[str], None] = lambda _t: None, *, overwrite: bool = False) -> list[Path]:
    """One PNG per exported object: the image with its question's heat map, its mask and points.
    The folder is the overlays' own, like a dataset format's (engine.export.staging): it ends up
    holding this export's overlays only."""
    plan = plan_export(project, selection, only_accepted=only_accepted)
    if plan.n_annotations == 0:
        raise ExportError("Nothing to draw: no " + ("accepted " if only_accepted else "") + "masks.")
    used: set[str] = set()
    try:
        with Staging(Path(out), owns=True, overwrite=overwrite, fmt="overlays") as stage:
            for entry in plan.loaded():
                if not entry.items:
                    continue
                say(f"overlay of {entry.image.name}")
                rgb = load_image(entry.abs_path).rgb
                for item in entry.items:
                    stem = unique_stem(f"{entry.stem}_{item.category.name}", used)
                    heat = None if item.run is None else item.run.heatmap
                    image = render_overlay(rgb, heat=heat, mask=item.mask, points=item.obj.points)
                    save_png(stage.root / f"{stem}.png", image)
            return stage.commit()
    except OSError as err:
        raise ExportError(f"Cannot write the overlays to {out}: {err.strerror or err}. Nothing was written.") from err
