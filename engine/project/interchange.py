"""The JSON interchange file (``"schema": "qmask.project"``): ``qmask export --format qmask-json``.

Version 2 (objects): a small header (categories, meta), then one compact JSON line per image with
its ``objects`` and ``runs``. Version 1 is what QMask wrote before projects were SQLite files (one
record per question, ``questions``); it is read, converted into objects and runs
(:mod:`engine.project.legacy`). Masks are COCO RLE; heat maps ``{"shape", "scale", "f16"}``
(base64 float16 of ``map / scale``). Image paths are relative to the file's folder.

- :func:`convert_json_project` turns such a file into ``NAME.qmask`` beside it, once: the JSON is
  left untouched, and a later open of the JSON uses the ``.qmask`` (the project says so in
  :attr:`Project.notice`).
- :func:`write_json_project` streams a project out as JSON (memory does not grow with it),
  atomically.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from pathlib import Path
from typing import Any, Callable

from ..errors import ProjectError
from ..runtime.atomic import atomic_writer
from . import tables as T
from .codec import _get, category_from_json, category_to_json, check_mask_sizes, image_from_json, image_to_json
from .legacy import legacy_from_json, split_legacy
from .records import ImageRecord, clean_label
from .store import Project, build_new

__all__ = ["JSON_SCHEMA", "JSON_VERSION", "JSON_SUFFIX", "JSON_MIGRATIONS", "read_json_project",
           "convert_json_project", "write_json_project", "db_path_for"]

JSON_SCHEMA = "qmask.project"
JSON_VERSION = 2
JSON_SUFFIX = ".qmask.json"
# version -> function turning a document of that version into version + 1 (version 1's questions
# are read by _images_v1, not rewritten as a document: they become objects as they are read).
JSON_MIGRATIONS: dict[int, Callable[[dict], dict]] = {}


def db_path_for(json_path: Path) -> Path:
    """``NAME.qmask.json`` -> ``NAME.qmask`` (any other ``X.json`` -> ``X.qmask``)."""
    name = json_path.name
    stem = name[: -len(JSON_SUFFIX)] if name.endswith(JSON_SUFFIX) else json_path.stem
    return json_path.with_name(stem + ".qmask")


def read_json_project(path: Path) -> dict[str, Any]:
    """Read and validate an interchange file: ``{"images", "categories", "meta", "created"}``."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError as err:
        raise ProjectError(f"No project file at {path}.") from err
    except OSError as err:
        raise ProjectError(f"Cannot read the project file {path}: {err.strerror or err}.") from err
    try:
        doc = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ProjectError(f"{path} is not a valid project file (broken JSON: {err}).") from err
    where = path.name
    if not isinstance(doc, dict) or doc.get("schema") != JSON_SCHEMA:
        raise ProjectError(f"{path} is not a QMask project (no \"schema\": \"{JSON_SCHEMA}\").")
    version = doc.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise ProjectError(f"{path}: the project version must be a positive integer, found {version!r}.")
    if version > JSON_VERSION:
        raise ProjectError(f"{path} was written by a newer QMask (project version {version}; this "
                           f"QMask reads up to {JSON_VERSION}). Update QMask to open it.")
    while 1 < version < JSON_VERSION:
        migrate = JSON_MIGRATIONS.get(version)
        if migrate is None:
            raise ProjectError(f"{path}: no migration from project version {version}.")
        doc = migrate(doc)
        version += 1
    categories = [category_from_json(d, f"{where}: categories[{i}]")
                  for i, d in enumerate(_get(doc, "categories", list, where, default=[]))]
    names, ids = [c.name for c in categories], [c.id for c in categories]
    if len(set(names)) != len(names) or len(set(ids)) != len(ids):
        raise ProjectError(f"{path}: category names and ids must be unique.")
    raw_images = _get(doc, "images", list, where, default=[])
    if version == 1:
        images = _images_v1(raw_images, where, {clean_label(n) for n in names})
    else:
        images = [image_from_json(d, f"{where}: images[{i}]") for i, d in enumerate(raw_images)]
    uids = [o.uid for img in images for o in img.objects]
    if len(set(uids)) != len(uids):
        raise ProjectError(f"{path}: the same object uid appears twice.")
    if len({img.path for img in images}) != len(images):
        raise ProjectError(f"{path}: the same image is listed twice.")
    meta = _get(doc, "meta", dict, where, default={})
    return {"images": images, "categories": categories, "meta": {str(k): str(v) for k, v in meta.items()},
            "created": _get(doc, "created", float, where, default=0.0)}


def _images_v1(raw: list, where: str, classes: set[str]) -> list[ImageRecord]:
    """Version-1 images: each question record split into a run and an object (nothing lost)."""
    images = []
    for i, d in enumerate(raw):
        at = f"{where}: images[{i}]"
        img = image_from_json(d, at, objects_and_runs=False)
        for j, q in enumerate(_get(d, "questions", list, at, default=[])):
            run, obj = split_legacy(legacy_from_json(q, f"{at}.questions[{j}]"), classes)
            if run is not None:
                img.runs = [r for r in img.runs if r.key != run.key] + [run]
            if obj is not None:
                obj.order = len(img.objects)
                img.objects.append(obj)
        check_mask_sizes(img, at)
        images.append(img)
    return images


def convert_json_project(json_path: Path, *, writer: str = "qmask") -> Project:
    """Open a JSON project (version 1 or 2) as ``NAME.qmask`` beside it, converting it the first time."""
    target = db_path_for(json_path)
    if target.exists():
        project = Project.open(target, writer=writer)
        project.notice = (f"{json_path.name} was converted earlier: QMask now works in {target} "
                          f"(the JSON file is no longer updated).")
        return project
    doc = read_json_project(json_path)
    try:
        build_new(target, lambda con: _fill(con, doc, json_path, writer))
    except FileExistsError:  # another process converted it meanwhile: use that one
        return convert_json_project(json_path, writer=writer)
    except (OSError, sqlite3.Error) as err:
        raise ProjectError(f"Cannot convert {json_path} into {target}: {getattr(err, 'strerror', None) or err}. "
                           "Nothing was written; the JSON file is unchanged.") from err
    project = Project.open(target, writer=writer)
    project.notice = (f"{json_path.name} (an older project file) was converted into {target.name}; QMask "
                      f"works there from now on. The JSON file was left as it was.")
    return project


def _fill(con: sqlite3.Connection, doc: dict[str, Any], json_path: Path, writer: str) -> None:
    """Insert a read interchange document into an empty store (one transaction, the caller's)."""
    now = time.time()
    for c in doc["categories"]:
        con.execute("INSERT OR IGNORE INTO categories (id, name, color) VALUES (?, ?, ?)",
                    (c.id, clean_label(c.name) or f"category {c.id}", ",".join(map(str, c.color)) if c.color else None))
    meta = dict(doc["meta"], created=repr(doc["created"] or now), converted_from=str(json_path))
    con.executemany("INSERT OR REPLACE INTO meta VALUES (?, ?)", list(meta.items()))
    for seq, img in enumerate(doc["images"], start=1):
        cur = con.execute("INSERT INTO images (path, name, width, height, sha256, status, error, added, seq) "
                          "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                          (img.path, img.name, img.width, img.height, img.sha256, img.status, img.error,
                           img.added, seq))
        image_id = cur.lastrowid
        for run in img.runs:
            T.upsert_run(con, image_id, run)
        for obj in img.objects:
            T.upsert_object(con, image_id, obj)
        T.log_edit(con, image_id, writer, "import", "convert", {"from": str(json_path)})
        T.refresh_summary(con, image_id)


def write_json_project(project: Project, out: str | os.PathLike[str]) -> Path:
    """Write ``project`` as an interchange file at ``out`` (atomically; streamed image by image).

    Image paths are rewritten relative to ``out``'s folder, so the file opens where it lands.
    """
    out = Path(out).expanduser().absolute()
    meta = project.meta
    created = float(meta.pop("created", "0") or 0)
    meta.pop("converted_from", None)
    header = {"schema": JSON_SCHEMA, "version": JSON_VERSION, "created": round(created, 3),
              "modified": round(time.time(), 3), "meta": meta,
              "categories": [category_to_json(c) for c in project.categories]}
    enc = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    head = json.dumps(header, indent=1, ensure_ascii=False, allow_nan=False)
    try:
        with atomic_writer(out) as f:
            f.write(head[:-2] + ',\n "images": [')
            first = True
            for img in project.iter_images():
                p = project.abs_path(img)
                try:
                    img.path = Path(os.path.relpath(p, out.parent)).as_posix()
                except ValueError:  # another drive
                    img.path = p.as_posix()
                f.write(("\n  " if first else ",\n  ") + enc.encode(image_to_json(img)))
                first = False
            f.write("\n ]\n}\n" if not first else "]\n}\n")
    except OSError as err:
        raise ProjectError(f"Cannot write {out}: {err.strerror or err}. Nothing was written.") from err
    return out
