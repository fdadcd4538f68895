"""Export a project as a dataset: COCO, YOLO segmentation, LabelMe or PNG masks.

One call for the CLI and the GUI::

    report = export_project(project, "coco", "out/annotations.json")          # all images
    report = export_project(project, "labelme", "out/", image_filter=[current]) # one image
    print(report)                       # "Exported 12 annotation(s) of 10 image(s) ..."

Every format also gets the QMask provenance sidecar (:mod:`engine.export.sidecar`). All files
are written atomically. Layouts, per format:

- ``coco``: ``out`` is a ``.json`` file, or a folder receiving ``annotations.json``; the
  sidecar is ``<stem>.qmask_provenance.json`` next to the file. RLE by default,
  ``polygons=True`` for exact (keyhole) polygons.
- ``yolo``: folder with ``images/``, ``labels/``, ``classes.txt``, ``data.yaml``.
- ``labelme``: folder with one ``<stem>.json`` per image.
- ``png``: folder with ``masks/``, ``labels/``, ``classes.txt``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

from ..errors import ExportError
from ..project import ImageRecord, Project
from .common import DEFAULT_LABEL, ExportPlan, ImageFilter, Staging, plan_export
from .sidecar import SIDECAR_NAME, SidecarWriter

__all__ = ["FORMATS", "ExportReport", "export_project", "plan_export", "DEFAULT_LABEL"]

FORMATS = ("coco", "yolo", "labelme", "png")


@dataclass
class ExportReport:
    format: str
    out: Path  # the COCO file, or the output folder
    sidecar: Path
    images: int
    annotations: int
    files: list[Path] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        text = (f"Exported {self.annotations} annotation(s) of {self.images} image(s) as "
                f"{self.format.upper()} to {self.out}.")
        if self.skipped:
            text += f" Skipped {len(self.skipped)}: " + "; ".join(self.skipped[:5])
            if len(self.skipped) > 5:
                text += f"; ... (all listed in {self.sidecar.name})"
        return text


def export_project(project: Project, fmt: str, out: str | Path,
                   image_filter: ImageFilter | Iterable[ImageRecord] | None = None, *,
                   polygons: bool = False, only_accepted: bool = False, tolerance: float = 0.0,
                   labelme_force_mask: bool = False, copy_images: bool = True,
                   overwrite: bool = False) -> ExportReport:
    """Export ``project`` (or the images ``image_filter`` selects) in format ``fmt`` to ``out``.

    ``polygons``: COCO only (YOLO is always polygons, LabelMe polygons unless a mask has holes).
    ``tolerance``: polygon simplification in pixels (0 = exact).
    ``copy_images``: YOLO only; link/copy images into ``out/images``.
    YOLO, LabelMe and PNG own their folder ``out`` (see :mod:`engine.export.staging`): it ends up
    holding this export only; a folder holding other files is refused unless ``overwrite``
    (which replaces its contents). COCO writes its two files beside whatever is there.
    Raises ExportError when nothing can be exported or the output cannot be written.
    """
    fmt = str(fmt).lower()
    if fmt not in FORMATS:
        raise ExportError(f"Unknown export format {fmt!r}; choose one of {', '.join(FORMATS)}.")
    if tolerance < 0:
        raise ExportError("The polygon tolerance must be 0 or more pixels.")
    plan: ExportPlan = plan_export(project, image_filter, only_accepted=only_accepted)
    if not plan.images:
        why = "no accepted annotations" if only_accepted else "no exportable images"
        detail = f" ({'; '.join(plan.skipped[:3])})" if plan.skipped else ""
        raise ExportError(f"Nothing to export: {why}{detail}.")
    out = Path(out).expanduser().absolute()
    refs: dict[tuple[int, str], dict] = {}
    coco_file = fmt == "coco" and out.suffix.lower() == ".json"
    final_dir = out.parent if coco_file else out
    try:
        with Staging(final_dir, owns=fmt != "coco", overwrite=overwrite, fmt=fmt) as stage:
            name = (out.name if coco_file else "annotations.json") if fmt == "coco" else None
            sidecar_name = (out.stem + "." + SIDECAR_NAME) if coco_file else SIDECAR_NAME
            sidecar = SidecarWriter(stage.root / sidecar_name, project, plan, fmt, refs)
            plan.after = sidecar.add  # one pass over the records for the format and its provenance
            try:
                if fmt == "coco":
                    from .coco import export_coco

                    export_coco(project, plan, stage.root / name, polygons=polygons, tolerance=tolerance, refs=refs)
                    files = [name]
                elif fmt == "yolo":
                    from .yolo import export_yolo

                    files = export_yolo(plan, stage.root, final_dir, tolerance=tolerance, copy_images=copy_images)
                elif fmt == "labelme":
                    from .labelme import export_labelme

                    files = export_labelme(plan, stage.root, final_dir, force_mask=labelme_force_mask,
                                           tolerance=tolerance)
                else:
                    from .png import export_png

                    files = export_png(plan, stage.root, refs=refs)
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
    return ExportReport(format=fmt, out=out_path, sidecar=final_dir / sidecar_name, images=len(plan.images),
                        annotations=plan.n_annotations, files=moved, skipped=plan.skipped)
