"""A dataset's class list, from whichever file holds it: ``classes.txt`` (one name per line,
line number = class index; PNG exports' ``background`` first line included as written),
YOLO's ``data.yaml`` (``names`` as a list or as ``{index: name}``, else ``nc`` numbered
names), or a COCO file's categories (in id order)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from ..errors import ExportError

__all__ = ["read_class_list", "read_yaml", "names_from_yaml"]


def read_class_list(path: str | os.PathLike[str]) -> list[str]:
    """The class names ``path`` holds, in class-index order. ExportError names the file (and
    line, for YAML and JSON) when it cannot be read or holds no class list."""
    p = Path(path).expanduser()
    suffix = p.suffix.lower()
    if suffix in (".yaml", ".yml"):
        return names_from_yaml(read_yaml(p), p)
    if suffix == ".json":
        try:
            doc = json.loads(p.read_text(encoding="utf-8"))
        except json.JSONDecodeError as err:
            raise ExportError(f"{p}:{err.lineno}: not readable JSON ({err.msg}).") from err
        except (OSError, UnicodeDecodeError) as err:
            raise ExportError(f"Cannot read {p}: {err}.") from err
        cats = doc.get("categories") if isinstance(doc, dict) else None
        if not isinstance(cats, list) or not all(isinstance(c, dict) and isinstance(c.get("name"), str) for c in cats):
            raise ExportError(f"{p} has no COCO 'categories' list of {{'id', 'name'}}.")
        ordered = sorted(cats, key=lambda c: (not isinstance(c.get("id"), int), c.get("id") if isinstance(c.get("id"), int) else 0))
        return [c["name"] for c in ordered]
    try:
        text = p.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as err:
        raise ExportError(f"Cannot read the class list {p}: {err}.") from err
    lines = text.splitlines()
    while lines and not lines[-1].strip():
        lines.pop()
    for i, line in enumerate(lines, start=1):
        if not line.strip():
            raise ExportError(f"{p}:{i}: an empty class name (one name per line, line number = class index).")
    return [line.strip() for line in lines]


def read_yaml(path: Path) -> dict[str, Any]:
    """A YAML mapping; ExportError naming the file and line of a syntax error."""
    import yaml

    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.MarkedYAMLError as err:
        line = err.problem_mark.line + 1 if err.problem_mark is not None else "?"
        raise ExportError(f"{path}:{line}: not readable YAML ({err.problem}).") from err
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as err:
        raise ExportError(f"Cannot read {path}: {err}.") from err
    if not isinstance(doc, dict):
        raise ExportError(f"{path} is not a YAML mapping (a dataset's data.yaml has 'names', 'train', ...).")
    return doc


def names_from_yaml(doc: dict[str, Any], path: Path) -> list[str]:
    """``names`` as a list, or a dict ``{index: name}`` with indices 0..n-1; else ``nc`` names
    ``"0"``, ``"1"``, ... (Ultralytics' reading of the same file)."""
    names = doc.get("names")
    if isinstance(names, list):
        if not all(isinstance(n, (str, int, float)) and str(n).strip() for n in names):
            raise ExportError(f"{path}: 'names' holds an empty or non-text class name.")
        return [str(n).strip() for n in names]
    if isinstance(names, dict):
        try:
            keys = sorted(int(k) for k in names)
        except (TypeError, ValueError):
            raise ExportError(f"{path}: 'names' keys must be class indices 0, 1, ...") from None
        if keys != list(range(len(keys))):
            raise ExportError(f"{path}: 'names' must number the classes 0 to {len(keys) - 1} without gaps.")
        by_index = {int(k): v for k, v in names.items()}
        if not all(isinstance(v, (str, int, float)) and str(v).strip() for v in by_index.values()):
            raise ExportError(f"{path}: 'names' holds an empty or non-text class name.")
        return [str(by_index[i]).strip() for i in keys]
    nc = doc.get("nc")
    if isinstance(nc, int) and not isinstance(nc, bool) and nc > 0:
        return [str(i) for i in range(nc)]
    raise ExportError(f"{path} has no class list ('names', or 'nc').")
