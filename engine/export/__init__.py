"""Export a project as a dataset: COCO, YOLO segmentation, LabelMe or PNG masks.

One call for the CLI and the GUI::

    report = export_project(project, "coco", "out/annotations.json")          # all images
    report = export_project(project, "labelme", "out/", image_filter=[current]) # one image
    report = export_project(project, "yolo", "ds/", self_contained=True, val_fraction=0.2)
    print(report)                       # "Exported 12 annotation(s) of 10 image(s) ..."

Each format is written in its readers' own convention (each writer's docstring says which),
and every export gets the QMask provenance file, where no dataset reader looks
(:mod:`engine.export.layout`). All files are written atomically; an export that fails leaves
nothing new behind. Layouts, per format (``SPLIT`` is ``train``/``val`` with a split):

- ``coco``: ``out`` is a ``.json`` file, or a folder receiving ``annotations.json``; RLE by
  default, ``polygons=True`` for exact (keyhole) polygons. Self-contained: ``images/[SPLIT/]``
  and ``annotations/instances_{default|SPLIT}.json``. ``grounded_vqa=True``: each COCO file's
  questions, answers, captions and grounded instances in ``<stem>.grounded_vqa.jsonl`` beside it.
- ``yolo``: ``images/[SPLIT/]``, ``labels/[SPLIT/]``, ``classes.txt``, ``data.yaml``.
- ``labelme``: one ``<image stem>.json`` per image, in the images' subfolders (where labelme
  looks with ``--output``); self-contained: each image beside its JSON, in ``[SPLIT/]``.
- ``png``: ``masks/``, ``labels/``, ``classes.txt`` (self-contained: and ``images/``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

from ..errors import ExportError
from ..project import ImageRecord, Project
from .common import DEFAULT_LABEL, ExportPlan, ImageFilter, Staging, plan_export
from .layout import Layout, plan_layout, provenance_path
from .sidecar import SidecarWriter

__all__ = ["FORMATS", "ExportReport", "export_project", "plan_export", "DEFAULT_LABEL"]

FORMATS = ("coco", "yolo", "labelme", "png")


@dataclass
class ExportReport:
    format: str
    out: Path  # the COCO file (the first split's in a self-contained export), or the output folder
    sidecar: Path  # the provenance file
    images: int
    annotations: int
    files: list[Path] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    rotated: int = 0  # images written upright from their EXIF orientation (self-contained)

    def __str__(self) -> str:
        text = (f"Exported {self.annotations} annotation(s) of {self.images} image(s) as "
                f"{self.format.upper()} to {self.out}.")
        if self.rotated:
            text += f" {self.rotated} image(s) were written upright (their EXIF orientation applied)."
        if self.skipped:
            text += f" Skipped {len(self.skipped)}: " + "; ".join(self.skipped[:5])
            if len(self.skipped) > 5:
                text += f"; ... (all listed in {self.sidecar.name})"
        return text


def export_project(project: Project, fmt: str, out: str | Path,
                   image_filter: ImageFilter | Iterable[ImageRecord] | None = None, *,
                   polygons: bool = False, only_accepted: bool = False, tolerance: float = 0.0,
                   labelme_force_mask: bool = False, copy_images: bool = True,
                   self_contained: bool = False, val_fraction: float = 0.0, seed: int = 0,
                   coco_attributes: bool = False, grounded_vqa: bool = False,
                   yolo_split_parts: bool = False, overwrite: bool = False) -> ExportReport:
    """Export ``project`` (or the images ``image_filter`` selects) in format ``fmt`` to ``out``.

    ``polygons``: COCO only (YOLO and LabelMe are always polygons, LabelMe optionally masks).
    ``tolerance``: polygon simplification in pixels (0 = exact).
    ``copy_images``: YOLO without ``self_contained``: link (or copy) the images into ``out/images``.
    ``self_contained``: copy the images into the dataset, upright, in the format's standard
    layout (``out`` is a folder); ``val_fraction`` > 0 splits it into train and val by ``seed``.
    ``coco_attributes``: COCO: also write question, answer and acceptance as CVAT-style
    ``attributes`` (datumaro's validators report them as undefined; by default they are in
    each annotation's ``qmask`` field, which readers ignore).
    ``yolo_split_parts``: YOLO: one row per connected part, not per object (exact pixels; each
    part reads as an instance).
    ``grounded_vqa``: COCO: also each question with its answer, captions and the instances it
    grounds, as JSON Lines beside each COCO file (:mod:`engine.export.grounded_vqa`).
    YOLO, LabelMe, PNG and a self-contained COCO own their folder ``out`` (see
    :mod:`engine.export.staging`): it ends up holding this export only; a folder holding other
    files is refused unless ``overwrite`` (which replaces its contents). A COCO file writes its
    files beside whatever is there.
    Raises ExportError when nothing can be exported or the output cannot be written.
    """
    fmt = str(fmt).lower()
    if fmt not in FORMATS:
        raise ExportError(f"Unknown export format {fmt!r}; choose one of {', '.join(FORMATS)}.")
    if tolerance < 0:
        raise ExportError("The polygon tolerance must be 0 or more pixels.")
    if grounded_vqa and fmt != "coco":
        raise ExportError("The grounded-VQA file goes beside a COCO file: export --format coco.")
    out = Path(out).expanduser().absolute()
    coco_file = fmt == "coco" and out.suffix.lower() == ".json"
    if self_contained and coco_file:
        raise ExportError(f"A self-contained export is a folder; {out.name} names a file. Give a folder.")
    plan: ExportPlan = plan_export(project, image_filter, only_accepted=only_accepted)
    if not plan.images:
        why = "no accepted annotations" if only_accepted else "no exportable images"
        detail = f" ({'; '.join(plan.skipped[:3])})" if plan.skipped else ""
        raise ExportError(f"Nothing to export: {why}{detail}.")
    layout = plan_layout(plan, self_contained=self_contained, val_fraction=val_fraction, seed=seed)
    if self_contained:
        missing = [e.image.path for e in plan.images if not e.abs_path.is_file()]
        if missing:
            raise ExportError(f"{len(missing)} image file(s) are missing, so a self-contained export cannot "
                              f"copy them: {', '.join(missing[:3])}. Relocate them first (qmask export PROJECT "
                              "--images DIR, or the app's Locate folder…).")
    refs: dict[tuple[int, str], dict] = {}
    final_dir = out.parent if coco_file else out
    side_rel = provenance_path(final_dir, out if coco_file else None).relative_to(final_dir)
    try:
        owns = fmt != "coco" or self_contained
        with Staging(final_dir, owns=owns, overwrite=overwrite, fmt=fmt) as stage:
            sidecar = SidecarWriter(stage.root / side_rel, project, plan, fmt, refs, layout)
            plan.after = sidecar.add  # one pass over the records for the format and its provenance
            try:
                files = _write(fmt, project, plan, layout, stage.root, final_dir, out, coco_file,
                               polygons=polygons, tolerance=tolerance, refs=refs, copy_images=copy_images,
                               labelme_force_mask=labelme_force_mask, coco_attributes=coco_attributes,
                               grounded_vqa=grounded_vqa, yolo_split_parts=yolo_split_parts)
            except BaseException as err:
                sidecar.close(err)
                raise
            finally:
                plan.after = None
            sidecar.close()
            moved = stage.commit()
    except OSError as err:
        raise ExportError(f"Cannot write the export to {out}: {err.strerror or err}. Nothing was written "
                          "(an earlier export there is unchanged).") from err
    out_path = final_dir / files[0] if fmt == "coco" else final_dir
    return ExportReport(format=fmt, out=out_path, sidecar=final_dir / side_rel, images=len(plan.images),
                        annotations=plan.n_annotations, files=moved, skipped=plan.skipped,
                        rotated=layout.rotated)


def _write(fmt: str, project: Project, plan: ExportPlan, layout: Layout, root: Path, final_dir: Path,
           out: Path, coco_file: bool, *, polygons: bool, tolerance: float, refs: dict, copy_images: bool,
           labelme_force_mask: bool, coco_attributes: bool, grounded_vqa: bool = False,
           yolo_split_parts: bool = False) -> list[str]:
    """Write format ``fmt`` into the staging folder ``root``; returns the file names (the
    annotation file(s) first)."""
    if fmt == "coco":
        from .coco import export_coco

        if layout.self_contained:
            names = {s: f"annotations/instances_{s}.json" for s in layout.splits}
        else:
            names = {s: out.name if coco_file else "annotations.json" for s in layout.splits}
        export_coco(project, plan, {s: root / n for s, n in names.items()}, layout, polygons=polygons,
                    tolerance=tolerance, refs=refs, attributes=coco_attributes, root=root, grounded_vqa=grounded_vqa)
        return list(names.values())
    if fmt == "yolo":
        from .yolo import export_yolo

        return export_yolo(plan, root, layout, tolerance=tolerance, link_images=copy_images, refs=refs,
                           split_parts=yolo_split_parts)
    if fmt == "labelme":
        from .labelme import export_labelme

        return export_labelme(plan, root, final_dir, layout, force_mask=labelme_force_mask,
                              tolerance=tolerance, refs=refs)
    from .png import export_png

    return export_png(plan, root, layout, refs=refs)
