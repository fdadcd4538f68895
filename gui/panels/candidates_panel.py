"""The three EfficientSAM mask candidates (pick one), the label, and accepting the mask."""

from __future__ import annotations

import numpy as np
from PySide6 import QtCore, QtGui, QtWidgets

from ..qt_images import mask_thumbnail

THUMB = 92


class CandidatesPanel(QtWidgets.QWidget):
    chosen = QtCore.Signal(int)
    label_edited = QtCore.Signal(str)
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
        self.label_edit = QtWidgets.QLineEdit()
        self.label_edit.setObjectName("labelEdit")
        self.label_edit.setToolTip("Category name used in exports; defaults to the answer's first words")
        self.label_edit.editingFinished.connect(self._on_label)
        self.accept_box = QtWidgets.QCheckBox("Accept this mask for export (Space)")
        self.accept_box.setObjectName("acceptBox")
        self.accept_box.toggled.connect(self._on_accept)
        form = QtWidgets.QFormLayout()
        form.setContentsMargins(0, 0, 0, 0)
        form.addRow("Label", self.label_edit)
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

    def set_label(self, label: str, default: str) -> None:
        if label != self.label_edit.text():
            self.label_edit.setText(label)
        self.label_edit.setPlaceholderText(default or "label (defaults to the answer's first words)")

    def set_accepted(self, accepted: bool, can_accept: bool) -> None:
        self._updating = True
        self.accept_box.setChecked(accepted)
        self.accept_box.setEnabled(can_accept or accepted)
        self._updating = False

    # ------------------------------------------------------------------ input
    def _on_clicked(self, index: int) -> None:
        if not self._updating:
            self.chosen.emit(index)

    def _on_label(self) -> None:
        self.label_edited.emit(self.label_edit.text().strip())

    def _on_accept(self, checked: bool) -> None:
        if not self._updating:
            self.accept_toggled.emit(checked)
