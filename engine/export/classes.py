"""YOLO's class lists, read the way Ultralytics reads them: ``data.yaml`` (``names`` as a list
or as ``{index: name}``, else ``nc`` numbered names) or ``classes.txt`` (line number = class
index, so no line may be empty). Errors name the file and line.

The project's class list (``qmask classes --from``) is read by
:func:`engine.project.class_lists.read_class_list`, which also takes a COCO file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import ExportError

__all__ = ["indexed_names", "read_yaml", "names_from_yaml"]


def indexed_names(path: Path) -> list[str]:
    """``classes.txt``: one name per line, line ``i + 1`` naming class ``i`` (trailing empty
    lines ignored, an empty line between names refused: it would shift every index after it)."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as err:
        raise ExportError(f"Cannot read the class list {path}: {err}.") from err
    lines = text.splitlines()
    while lines and not lines[-1].strip():
        lines.pop()
    for i, line in enumerate(lines, start=1):
        if not line.strip():
            raise ExportError(f"{path}:{i}: an empty class name (one name per line, line number = class index).")
    if not lines:
        raise ExportError(f"{path} holds no class names.")
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
