"""One entry point for every import format: which format a source is, read it, write it.

Formats: ``coco`` (an instances JSON file, or a folder in the standard layout with
``annotations/instances_*.json``: every split), ``yolo`` (a ``data.yaml``, or a folder with
one or with ``labels/`` and ``classes.txt``), ``labelme`` (a folder of LabelMe JSON files, or
one), ``png`` (a folder with ``masks/``). Every reader returns an
:class:`~engine.export.imported.ImportedDataset`, read and checked whole before anything is
written; :func:`~engine.export.imported.write_imported` writes it.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import ExportError
from ..project import Project
from .imported import ImportedDataset, ImportReport, import_into_new_project, write_imported
from .reading import read_json

__all__ = ["IMPORT_FORMATS", "detect_format", "read_dataset", "import_dataset", "import_into"]

IMPORT_FORMATS = ("coco", "yolo", "labelme", "png")


def detect_format(source: str | os.PathLike[str]) -> str:
    """The format of ``source`` (a file or folder); ExportError when it is none of them."""
    from .labelme_import import is_labelme_file
    from .yolo_import import find_yaml

    src = Path(source).expanduser()
    if src.is_file():
        suffix = src.suffix.lower()
        if suffix in (".yaml", ".yml"):
            return "yolo"
        if suffix == ".json":
            doc = _peek_json(src)
            if isinstance(doc, dict) and isinstance(doc.get("images"), list):
                return "coco"
            if is_labelme_file(doc):
                return "labelme"
            raise ExportError(f"{src} is neither a COCO instances file ('images', 'annotations', 'categories') "
                              "nor a LabelMe file ('shapes', 'imagePath').")
        raise ExportError(f"{src}: import a COCO or LabelMe .json file, a YOLO data.yaml, or a dataset folder.")
    if not src.is_dir():
        raise ExportError(f"No dataset at {src}.")
    if find_yaml(src) is not None:
        return "yolo"
    if sorted((src / "annotations").glob("instances_*.json")):
        return "coco"
    if (src / "masks").is_dir():
        return "png"
    if (src / "labels").is_dir() and ((src / "classes.txt").is_file() or (src / "labels" / "classes.txt").is_file()):
        return "yolo"
    from .labelme_import import _json_files

    for f in _json_files(src)[:50]:
        if is_labelme_file(_peek_json(f, strict=False)):
            return "labelme"
    raise ExportError(f"{src} holds no dataset QMask reads: a COCO file (annotations/instances_*.json), a YOLO "
                      "data.yaml or labels/ with classes.txt, LabelMe .json files, or PNG masks (masks/).")


def _peek_json(path: Path, strict: bool = True) -> object:
    try:
        return read_json(path)
    except ExportError:
        if not strict:
            return None
        raise


def read_dataset(source: str | os.PathLike[str], fmt: str = "auto",
                 images_dir: str | os.PathLike[str] | None = None) -> ImportedDataset:
    """Read ``source`` in format ``fmt`` (``auto``: :func:`detect_format`)."""
    fmt = detect_format(source) if fmt == "auto" else fmt
    if fmt == "coco":
        from .coco_import import read_coco

        src = Path(source).expanduser().absolute()
        if src.is_dir():
            files = sorted((src / "annotations").glob("instances_*.json"))
            if not files:
                raise ExportError(f"{src} has no annotations/instances_*.json.")
            return _merged([read_coco(f, images_dir) for f in files])
        return read_coco(src, images_dir)
    if fmt == "yolo":
        from .yolo_import import read_yolo

        return read_yolo(source, images_dir)
    if fmt == "labelme":
        from .labelme_import import read_labelme

        return read_labelme(source, images_dir)
    if fmt == "png":
        from .png_import import read_png_masks

        return read_png_masks(source, images_dir)
    raise ExportError(f"Unknown import format {fmt!r}; choose one of {', '.join(IMPORT_FORMATS)} (or auto).")


def _merged(parts: list[ImportedDataset]) -> ImportedDataset:
    out = ImportedDataset(format=parts[0].format)
    for d in parts:
        out.images += d.images
        out.skipped += d.skipped
        out.categories += [c for c in d.categories if c not in out.categories]
        for name, cid in d.category_ids.items():
            out.category_ids.setdefault(name, cid)
    return out


def import_dataset(source: str | os.PathLike[str], project_path: str | os.PathLike[str], *, fmt: str = "auto",
                   images_dir: str | os.PathLike[str] | None = None, merge: bool = False) -> tuple[Project, ImportReport]:
    """Create (or with ``merge``, extend) the project at ``project_path`` from ``source``; a
    failed import creates nothing (see :func:`~engine.export.imported.import_into_new_project`)."""
    return import_into_new_project(lambda: read_dataset(source, fmt, images_dir), project_path, merge=merge)


def import_into(project: Project, source: str | os.PathLike[str], *, fmt: str = "auto",
                images_dir: str | os.PathLike[str] | None = None) -> ImportReport:
    """Add ``source`` to an open project (the app's File > Import dataset)."""
    return write_imported(project, read_dataset(source, fmt, images_dir))
