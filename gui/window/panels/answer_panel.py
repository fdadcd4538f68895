"""The answer, the image-question match, the captions used, per-word heat maps and fusion."""

from __future__ import annotations

import html

from PySide6 import QtCore, QtWidgets

from gui.window.panels.flow_layout import FlowLayout


MAX_ANSWER_CHARS = 80


def display_answer(answer: str | None) -> str:
    """The answer as the panel shows it: a dash for none, shortened when very long (random weights ramble)."""
    if answer is None:
        return "—"
    if not answer:
        return "(empty answer)"
    return answer if len(answer) <= MAX_ANSWER_CHARS else answer[:MAX_ANSWER_CHARS].rstrip() + "…"


class AnswerPanel(QtWidgets.QWidget):
    token_selected = QtCore.Signal(object)  # index of the question word, or None for the whole question
    alpha_changed = QtCore.Signal(float, int)  # alpha, gesture id (one drag = one undo step)
    rerun_requested = QtCore.Signal()

    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self._gesture = 0
        self._updating = False

        self.answer_label = QtWidgets.QLabel("—")
        self.answer_label.setObjectName("answerLabel")
        self.answer_label.setWordWrap(True)
        self.answer_label.setTextInteractionFlags(QtCore.Qt.TextInteractionFlag.TextSelectableByMouse)
        font = self.answer_label.font()
        font.setPointSizeF(font.pointSizeF() * 1.7)
        font.setBold(True)
        self.answer_label.setFont(font)
        self.stale_label = QtWidgets.QLabel("The map changed since this answer: Re-run answer to update it.")
        self.stale_label.setObjectName("staleLabel")
        self.stale_label.setWordWrap(True)
        self.stale_label.hide()
        self.previous_label = QtWidgets.QLabel("")
        self.previous_label.setObjectName("previousAnswer")
        self.previous_label.setWordWrap(True)
        self.previous_label.hide()

        self.match_bar = QtWidgets.QProgressBar()
        self.match_bar.setObjectName("matchBar")
        self.match_bar.setRange(0, 1000)
        self.match_bar.setTextVisible(True)
        self.match_bar.setFormat("image-question match: —")
        self.match_bar.setToolTip("BLIP image-text matching probability that the image fits the question")

        self.tokens_box = QtWidgets.QWidget()
        self.tokens_layout = FlowLayout(self.tokens_box)
        self.token_buttons: list[QtWidgets.QPushButton] = []
        self._token_group = QtWidgets.QButtonGroup(self)
        self._token_group.setExclusive(True)
        self._token_group.idClicked.connect(self._on_token)

        self.alpha_slider = QtWidgets.QSlider(QtCore.Qt.Orientation.Horizontal)
        self.alpha_slider.setObjectName("alphaSlider")
        self.alpha_slider.setRange(0, 100)
        self.alpha_slider.setPageStep(10)
        self.alpha_slider.setToolTip("Fusion alpha: share of the heat map in the map that guides the captions "
                                     "(1 = heat map only, 0 = mask only). Re-fuses at once.")
        self.alpha_value = QtWidgets.QLabel("0.50")
        self.alpha_value.setMinimumWidth(34)
        self.rerun_button = QtWidgets.QPushButton("Re-run answer")
        self.rerun_button.setObjectName("rerunButton")
        self.rerun_button.setToolTip("Write new captions from the current fused map and answer again (Ctrl+R); "
                                     "the previous answer stays visible")
        self.alpha_slider.sliderPressed.connect(self._new_gesture)
        self.alpha_slider.valueChanged.connect(self._on_alpha)
        self.rerun_button.clicked.connect(self.rerun_requested)

        self.captions_list = QtWidgets.QListWidget()
        self.captions_list.setObjectName("captionsList")
        self.captions_list.setWordWrap(True)
        self.captions_list.setAlternatingRowColors(True)
        self.captions_title = QtWidgets.QLabel("Captions used")

        layout = QtWidgets.QVBoxLayout(self)
        layout.setContentsMargins(6, 4, 6, 4)
        layout.addWidget(self.answer_label)
        layout.addWidget(self.stale_label)
        layout.addWidget(self.previous_label)
        layout.addWidget(self.match_bar)
        layout.addWidget(_section("Heat map of a word (click one)"))
        layout.addWidget(self.tokens_box)
        layout.addWidget(_section("Fusion"))
        alpha_row = QtWidgets.QHBoxLayout()
        alpha_row.addWidget(QtWidgets.QLabel("mask"))
        alpha_row.addWidget(self.alpha_slider, 1)
        alpha_row.addWidget(QtWidgets.QLabel("heat"))
        alpha_row.addWidget(self.alpha_value)
        layout.addLayout(alpha_row)
        layout.addWidget(self.rerun_button)
        layout.addWidget(self.captions_title)
        layout.addWidget(self.captions_list, 1)
        self.set_alpha(0.5)

    # ------------------------------------------------------------------ display
    def clear(self) -> None:
        self.set_answer(None, None, stale=False)
        self.set_match(None)
        self.set_tokens(())
        self.set_captions(())

    def set_answer(self, answer, previous, stale: bool) -> None:
        """``answer``/``previous`` are session.AnswerView or None."""
        full = answer.answer if answer is not None else None
        self.answer_label.setToolTip(full if full and len(full) > MAX_ANSWER_CHARS else "")
        self.answer_label.setText(display_answer(full))
        self.stale_label.setVisible(bool(answer is not None and stale))
        if previous is not None:
            how = "edited points" if previous.edited_points else "automatic points"
            self.previous_label.setText(f"Previous answer: <b>{_escape(previous.answer) or '(empty)'}</b> "
                                        f"(alpha {previous.alpha:.2f}, {how})")
            self.previous_label.show()
        else:
            self.previous_label.hide()

    def set_match(self, probability: float | None) -> None:
        if probability is None:
            self.match_bar.setValue(0)
            self.match_bar.setFormat("image-question match: —")
        else:
            self.match_bar.setValue(int(round(probability * 1000)))
            self.match_bar.setFormat(f"image-question match: {probability:.1%}")

    def set_tokens(self, tokens: tuple[str, ...] | list[str], selected: int | None = None) -> None:
        for button in self.token_buttons:
            self._token_group.removeButton(button)
            self.tokens_layout.removeWidget(button)
            button.deleteLater()
        self.token_buttons = []
        if not tokens:
            return
        names = ["whole question"] + [t for t in tokens]
        for i, name in enumerate(names):
            button = QtWidgets.QPushButton(name)
            button.setCheckable(True)
            button.setObjectName("tokenButton")
            button.setToolTip("the question's heat map" if i == 0 else f"heat map of the word '{name}'")
            self._token_group.addButton(button, i - 1 if i else -2)
            self.tokens_layout.addWidget(button)
            self.token_buttons.append(button)
        # Tab reaches the new words where they are shown, before the fusion slider
        before = self.alpha_slider.previousInFocusChain()
        for button in self.token_buttons:
            QtWidgets.QWidget.setTabOrder(before, button)
            before = button
        target = 0 if selected is None else selected + 1
        if 0 <= target < len(self.token_buttons):
            self.token_buttons[target].setChecked(True)
        self.tokens_box.updateGeometry()

    def set_captions(self, captions) -> None:
        self.captions_list.clear()
        self.captions_list.addItems(list(captions))
        self.captions_title.setText(f"Captions used ({len(captions)})" if captions else "Captions used")

    def set_alpha(self, alpha: float) -> None:
        self._updating = True
        self.alpha_slider.setValue(int(round(alpha * 100)))
        self.alpha_value.setText(f"{alpha:.2f}")
        self._updating = False

    def set_busy(self, busy: bool) -> None:
        self.rerun_button.setEnabled(not busy)

    # ------------------------------------------------------------------ input
    def _on_token(self, button_id: int) -> None:
        self.token_selected.emit(None if button_id == -2 else button_id)

    def _new_gesture(self) -> None:
        self._gesture += 1

    def _on_alpha(self, value: int) -> None:
        self.alpha_value.setText(f"{value / 100:.2f}")
        if self._updating:
            return
        if not self.alpha_slider.isSliderDown():
            self._gesture += 1  # keyboard or click steps: each is its own undo step
        self.alpha_changed.emit(value / 100.0, self._gesture)


def _section(text: str) -> QtWidgets.QLabel:
    label = QtWidgets.QLabel(text)
    label.setObjectName("sectionLabel")
    return label


def _escape(text: str) -> str:
    return html.escape(text)
