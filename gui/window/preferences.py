"""What the app remembers between runs, and where.

Remembered: the models folder chosen in the Models dialog, the Engine menu's "Encode images when
shown", the view (which layers show, the heat map's opacity and colours), the window's size
and dock layout, the folder opened last and the questions asked last (:data:`QUESTIONS_KEPT`,
newest first). Work on images is not a preference: it lives in the project.

Where: ``preferences.json`` in QMask's data folder (:func:`gui.workspace.data_paths.data_folder`), written
atomically (``engine.runtime.atomic``). Every value is checked when read: a missing, mistyped or
out-of-range value reads as "not remembered" and the window keeps its built-in default, so a
hand-edited or damaged file never stops the app. A file that is not JSON at all is moved aside
(``preferences.json.damaged``) when the app next saves, not overwritten. (Not QSettings: it
caches a parsed file per process and reports a damaged one only to its first reader.)

Which models folder wins: ``--models``, then ``$QMASK_MODELS_DIR``, then the remembered folder
(while it exists), then the Hugging Face cache (:func:`models_folder`).
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from PySide6 import QtCore, QtWidgets

from engine.runtime.atomic import atomic_write_json

from gui.canvas.layers import HEATMAP_COLORMAPS
from gui.window.panels.question_panel import QUESTIONS_KEPT
from gui.workspace.data_paths import data_folder

log = logging.getLogger(__name__)

FILE_NAME = "preferences.json"
FORMAT = "qmask-preferences"
VERSION = 1
LAYER_ACTIONS = ("toggle_heat", "toggle_fused", "toggle_mask", "toggle_points")


@dataclass
class Preferences:
    """The remembered values; None (or a missing layer) means "not remembered"."""

    models_dir: str | None = None  # "" when saving: forget the folder
    encode_on_show: bool | None = None
    layers: dict[str, bool] = field(default_factory=dict)  # LAYER_ACTIONS name -> shown
    heat_opacity: int | None = None  # percent, 0..100
    colormap: str | None = None  # one of HEATMAP_COLORMAPS
    geometry: bytes | None = None  # QWidget.saveGeometry()
    window_state: bytes | None = None  # QMainWindow.saveState(): docks and toolbar
    last_folder: str | None = None  # the folder of the images opened last
    questions: list[str] | None = None  # the question history, newest first


def default_path() -> Path:
    return data_folder() / FILE_NAME


class PreferencesStore:
    """Reads and writes :class:`Preferences` in a JSON file (``default_path()`` unless given)."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = Path(path) if path is not None else default_path()

    def _read(self) -> tuple[dict[str, Any], bool]:
        """(the file's object, or {}; True when the file exists but is not a JSON object)."""
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return {}, False
        except UnicodeDecodeError:
            log.warning("The preferences file %s is damaged (not text); using the defaults.", self.path)
            return {}, True
        except OSError as err:  # unreadable (e.g. a folder of that name): nothing to set aside
            log.warning("Could not read the preferences in %s (%s); using the defaults.", self.path, err)
            return {}, False
        try:
            obj = json.loads(text)
        except ValueError:
            obj = None
        if not isinstance(obj, dict):
            log.warning("The preferences file %s is damaged; using the defaults.", self.path)
            return {}, True
        return obj, False

    def load(self) -> Preferences:
        """The remembered values, checked one by one."""
        return parse(self._read()[0])

    def save(self, prefs: Preferences) -> bool:
        """Write the fields that are not None over what the file holds.

        Returns False, with a log line, when the file could not be written: preferences are a
        convenience, so that never stops the app or loses the user's work. A damaged file is
        moved aside (``<name>.damaged``) first.
        """
        obj, damaged = self._read()
        values = merged(parse(obj), prefs)
        if values.models_dir == "":
            values.models_dir = None
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            if damaged:
                aside = self.path.with_name(self.path.name + ".damaged")
                self.path.replace(aside)
                log.warning("The damaged preferences file is now %s.", aside)
            atomic_write_json(self.path, to_json(values))
        except OSError as err:
            log.warning("Could not save the preferences in %s: %s", self.path, err)
            return False
        return True


def merged(old: Preferences, new: Preferences) -> Preferences:
    """``new``'s remembered values over ``old``'s."""
    out = Preferences(**{f.name: getattr(new, f.name) if getattr(new, f.name) is not None else getattr(old, f.name)
                         for f in fields(Preferences) if f.name != "layers"})
    out.layers = {**old.layers, **new.layers}
    return out


def to_json(prefs: Preferences) -> dict[str, Any]:
    def b64(data: bytes | None) -> str | None:
        return base64.b64encode(data).decode("ascii") if data is not None else None

    obj: dict[str, Any] = {
        "format": FORMAT, "version": VERSION,
        "engine": {"models_dir": prefs.models_dir, "encode_on_show": prefs.encode_on_show},
        "view": {"layers": {name.removeprefix("toggle_"): shown for name, shown in prefs.layers.items()},
                 "heat_opacity": prefs.heat_opacity, "colormap": prefs.colormap},
        "window": {"geometry": b64(prefs.geometry), "state": b64(prefs.window_state)},
        "files": {"last_folder": prefs.last_folder},
        "questions": {"history": prefs.questions},
    }
    for section in ("engine", "view", "window", "files", "questions"):  # None = not remembered: not written
        obj[section] = {k: v for k, v in obj[section].items() if v is not None}
    return obj


def parse(obj: Mapping[str, Any]) -> Preferences:
    """Checked values from the file's JSON object (anything odd reads as not remembered)."""
    engine, view, window, files, questions = (_section(obj, name) for name in
                                              ("engine", "view", "window", "files", "questions"))
    prefs = Preferences()
    folder = engine.get("models_dir")
    if isinstance(folder, str) and folder.strip():
        prefs.models_dir = folder.strip()
    if isinstance(engine.get("encode_on_show"), bool):
        prefs.encode_on_show = engine["encode_on_show"]
    layers = view.get("layers")
    if isinstance(layers, Mapping):
        for name in LAYER_ACTIONS:
            shown = layers.get(name.removeprefix("toggle_"))
            if isinstance(shown, bool):
                prefs.layers[name] = shown
    opacity = view.get("heat_opacity")
    if isinstance(opacity, int) and not isinstance(opacity, bool) and 0 <= opacity <= 100:
        prefs.heat_opacity = opacity
    if view.get("colormap") in HEATMAP_COLORMAPS:
        prefs.colormap = view["colormap"]
    prefs.geometry = _unb64(window.get("geometry"))
    prefs.window_state = _unb64(window.get("state"))
    folder = files.get("last_folder")
    if isinstance(folder, str) and folder.strip():
        prefs.last_folder = folder.strip()
    history = questions.get("history")
    if isinstance(history, list):
        kept = [q.strip() for q in history if isinstance(q, str) and q.strip()]
        prefs.questions = list(dict.fromkeys(kept))[:QUESTIONS_KEPT]
    return prefs


def _section(obj: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    value = obj.get(name)
    return value if isinstance(value, Mapping) else {}


def _unb64(value: Any) -> bytes | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return None


def capture(window: QtWidgets.QMainWindow) -> Preferences:
    """The window's current view, Engine toggle, layout and question history (not the models
    folder: that one is saved when it is chosen; nor the folder opened last: the app's)."""
    actions = window.action_map
    return Preferences(
        encode_on_show=actions["encode_on_show"].isChecked(),
        layers={name: actions[name].isChecked() for name in LAYER_ACTIONS},
        heat_opacity=window.opacity_slider.value(),
        colormap=window.colormap_box.currentText() or None,
        geometry=bytes(window.saveGeometry().data()),
        window_state=bytes(window.saveState().data()),
        questions=window.question_panel.history(),
    )


def apply(prefs: Preferences, window: QtWidgets.QMainWindow, layout: bool = True) -> None:
    """Put the remembered values on the window (its actions' signals then update the app).
    ``layout`` False leaves the window's size and docks as built (screenshots)."""
    actions = window.action_map
    if prefs.encode_on_show is not None:
        actions["encode_on_show"].setChecked(prefs.encode_on_show)
    for name, shown in prefs.layers.items():
        actions[name].setChecked(shown)
    if prefs.heat_opacity is not None:
        window.opacity_slider.setValue(prefs.heat_opacity)
    if prefs.colormap is not None:
        window.colormap_box.setCurrentText(prefs.colormap)
    if prefs.questions is not None:
        window.question_panel.set_history(prefs.questions)
    if layout:
        if prefs.geometry is not None and not window.restoreGeometry(QtCore.QByteArray(prefs.geometry)):
            log.info("The remembered window size could not be restored; using the default.")
        if prefs.window_state is not None and not window.restoreState(QtCore.QByteArray(prefs.window_state)):
            log.info("The remembered dock layout could not be restored; using the default.")


def models_folder(cli: str | None, prefs: Preferences, environ: Mapping[str, str] | None = None
                  ) -> tuple[str | None, str]:
    """(models folder for the engine, or None for its own lookup; a note for the user or "").

    ``--models`` wins, then ``$QMASK_MODELS_DIR`` (None here: the engine reads it), then the
    remembered folder while it still exists.
    """
    env = os.environ if environ is None else environ
    if cli:
        return cli, ""
    if env.get("QMASK_MODELS_DIR", "").strip() or not prefs.models_dir:
        return None, ""
    if Path(prefs.models_dir).expanduser().is_dir():
        return prefs.models_dir, ""
    return None, (f"The models folder chosen last time, {prefs.models_dir}, is gone; looking in the "
                  "Hugging Face cache instead (Engine > Models… chooses another).")


__all__ = ["FILE_NAME", "LAYER_ACTIONS", "Preferences", "PreferencesStore", "apply", "capture", "default_path",
           "merged", "models_folder", "parse", "to_json"]
