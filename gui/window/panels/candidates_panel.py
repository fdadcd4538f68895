"""The selected object: its three EfficientSAM mask candidates (pick one), its class, and accepting it."""

from __future__ import annotations

import numpy as np
from PySide6 import QtCore, QtGui, QtWidgets

from gui.canvas.qt_images import mask_thumbnail

THUMB = 92


class CandidatesPanel(QtWidgets.QWidget):
    chosen = QtCore.Signal(int)
    class_chosen = QtCore.Signal(str)  # a class of the list, or a new name ("" clears the class)
    accept_toggled = QtCore.Signal(bool)

    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self._updating = False
        self._group = QtWidgets.QButtonGroup(self)
        self._group.setExclusive(True)
        self._group.idClicked.connect(self._on_clicked)
        self.buttons: list[QtWidgets.QToolButton] = []
        row = QtWidgets.QHBoxLayout()
        row.setSpacing(4)
        for i in range(3):
            b = QtWidgets.QToolButton()
            b.setObjectName("candidateButton")
            b.setCheckable(True)
            b.setToolButtonStyle(QtCore.Qt.ToolButtonStyle.ToolButtonTextUnderIcon)
            b.setIconSize(QtCore.QSize(THUMB, THUMB))
            b.setSizePolicy(QtWidgets.QSizePolicy.Policy.Expanding, QtWidgets.QSizePolicy.Policy.Preferred)
            b.setEnabled(False)
            self._group.addButton(b, i)
            self.buttons.append(b)
            row.addWidget(b)
        self.summary = QtWidgets.QLabel("No mask yet: ask a question or click on the image.")
        self.summary.setObjectName("promptSummary")
        self.summary.setWordWrap(True)
        self.class_box = QtWidgets.QComboBox()
        self.class_box.setObjectName("classBox")
        self.class_box.setEditable(True)
        self.class_box.setInsertPolicy(QtWidgets.QComboBox.InsertPolicy.NoInsert)
        self.class_box.lineEdit().setPlaceholderText("class (1-9, or L to search; a new name adds a class)")
        self.class_box.setToolTip("The selected object's class, from the project's class list (keys 1-9 pick the "
                                  "first nine; L searches). Typing a new name adds it to the list.")
        self.class_box.completer().setFilterMode(QtCore.Qt.MatchFlag.MatchContains)
        self.class_box.completer().setCaseSensitivity(QtCore.Qt.CaseSensitivity.CaseInsensitive)
        self.class_box.activated.connect(self._on_class_picked)
        self.class_box.lineEdit().editingFinished.connect(self._on_class_typed)
        self.accept_box = QtWidgets.QCheckBox("Accept this object for export (Space)")
        self.accept_box.setObjectName("acceptBox")
        self.accept_box.toggled.connect(self._on_accept)
        form = QtWidgets.QFormLayout()
        form.setContentsMargins(0, 0, 0, 0)
        form.addRow("Class", self.class_box)
        layout = QtWidgets.QVBoxLayout(self)
        layout.setContentsMargins(6, 4, 6, 4)
        layout.addLayout(row)
        layout.addWidget(self.summary)
        layout.addLayout(form)
        layout.addWidget(self.accept_box)

    # ------------------------------------------------------------------ display
    def set_candidates(self, rgb: np.ndarray | None, candidates, chosen: int) -> None:
        """``candidates``: MaskCandidate tuple (or empty); shows each on a thumbnail with its IoU."""
        self._updating = True
        for i, b in enumerate(self.buttons):
            if rgb is not None and i < len(candidates):
                b.setIcon(mask_thumbnail(rgb, candidates[i].mask, THUMB))
                b.setText(f"{i + 1} · IoU {candidates[i].iou:.2f}")
                area = candidates[i].area  # counted off the GUI thread (prepare_candidates), else here
                area = int(np.count_nonzero(candidates[i].mask)) if area is None else area
                b.setToolTip(f"Mask candidate {i + 1}: EfficientSAM's predicted IoU {candidates[i].iou:.3f} "
                             f"({area:,} pixels)")
                b.setEnabled(True)
                b.setChecked(i == chosen)
            else:
                b.setIcon(mask_thumbnail(rgb, None, THUMB) if rgb is not None else QtGui.QIcon())
                b.setText(f"{i + 1} · —")
                b.setToolTip("")
                b.setEnabled(False)
                b.setChecked(False)
        self._updating = False

    def set_summary(self, text: str) -> None:
        self.summary.setText(text)

    def set_classes(self, categories) -> None:
        """The class list (``engine.project.Category`` values, id order), each with its colour."""
        self._updating = True
        current = self.class_box.currentText()
        self.class_box.clear()
        for i, c in enumerate(categories):
            pix = QtGui.QPixmap(12, 12)
            pix.fill(QtGui.QColor(*c.rgb))
            self.class_box.addItem(QtGui.QIcon(pix), c.name if i >= 9 else f"{c.name}")
            self.class_box.setItemData(i, f"key {i + 1}" if i < 9 else "", QtCore.Qt.ItemDataRole.ToolTipRole)
        self.class_box.setEditText(current)
        self._updating = False

    def set_category(self, name: str | None, enabled: bool = True) -> None:
        """The selected object's class ("" shown for none); disabled while no object is selected."""
        self._updating = True
        index = self.class_box.findText(name) if name else -1
        self.class_box.setCurrentIndex(index)
        self.class_box.setEditText(name or "")
        self.class_box.setEnabled(enabled)
        self._updating = False

    def set_accepted(self, accepted: bool, can_accept: bool) -> None:
        self._updating = True
        self.accept_box.setChecked(accepted)
        self.accept_box.setEnabled(can_accept or accepted)
        self._updating = False

    # ------------------------------------------------------------------ input
    def _on_clicked(self, index: int) -> None:
        if not self._updating:
            self.chosen.emit(index)

    def _on_class_picked(self, index: int) -> None:
        if not self._updating and index >= 0:
            self.class_chosen.emit(self.class_box.itemText(index))

    def _on_class_typed(self) -> None:
        if not self._updating:
            self.class_chosen.emit(self.class_box.currentText().strip())

    def _on_accept(self, checked: bool) -> None:
        if not self._updating:
            self.accept_toggled.emit(checked)
