"""A class list read from the files datasets keep one in: classes.txt, a YOLO data.yaml, a COCO JSON."""

from __future__ import annotations

import json
import os
from pathlib import Path

from ..errors import InputError
from .records import clean_label

__all__ = ["read_class_list"]


def read_class_list(path: str | os.PathLike[str]) -> list[str]:
    """Class names in their file's order: ``*.txt`` one a line (blank lines skipped), ``*.yaml``
    / ``*.yml`` its ``names`` (a list, or a dict index -> name, as YOLO writes both), ``*.json``
    a COCO file's ``categories`` (sorted by id). Names are cleaned as the project stores them;
    duplicates are dropped. InputError naming the file for anything else."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as err:
        raise InputError(f"Cannot read the class list {p}: {getattr(err, 'strerror', None) or err}.") from err
    suffix = p.suffix.lower()
    if suffix in (".yaml", ".yml"):
        names = _yaml_names(text, p)
    elif suffix == ".json":
        names = _coco_names(text, p)
    else:
        names = text.splitlines()
    out: list[str] = []
    for name in names:
        clean = clean_label(str(name))
        if clean and clean not in out:
            out.append(clean)
    if not out:
        raise InputError(f"{p} holds no class names.")
    return out


def _yaml_names(text: str, p: Path) -> list[str]:
    try:
        import yaml
    except ImportError:  # pragma: no cover - pyyaml is a dependency
        raise InputError("Reading a data.yaml needs PyYAML (pip install pyyaml).") from None
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise InputError(f"{p} is not valid YAML ({err}).") from err
    names = doc.get("names") if isinstance(doc, dict) else None
    if isinstance(names, dict):
        try:
            return [str(names[k]) for k in sorted(names, key=int)]
        except (TypeError, ValueError):
            raise InputError(f"{p}: 'names' must map class indices (0, 1, ...) to names.") from None
    if isinstance(names, list):
        return [str(n) for n in names]
    raise InputError(f"{p} has no 'names' list (a YOLO data.yaml names its classes there).")


def _coco_names(text: str, p: Path) -> list[str]:
    try:
        doc = json.loads(text)
    except (json.JSONDecodeError, RecursionError) as err:
        raise InputError(f"{p} is not valid JSON ({err}).") from err
    cats = doc.get("categories") if isinstance(doc, dict) else None
    if not isinstance(cats, list) or not all(isinstance(c, dict) and isinstance(c.get("name"), str) for c in cats):
        raise InputError(f"{p} has no COCO 'categories' list of {{'id', 'name'}} entries.")
    return [c["name"] for c in sorted(cats, key=lambda c: c.get("id") if isinstance(c.get("id"), int) else 0)]
