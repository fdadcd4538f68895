"""The question box, how many objects a question proposes, and the Ask button."""

from __future__ import annotations

from PySide6 import QtCore, QtWidgets

from engine.errors import InputError
from engine.vqa.question import clean_question_text


INSTANCE_CHOICES = (("auto", "objects: auto"), ("one", "one object"), ("several", "one per region"))
QUESTIONS_KEPT = 50  # the question history's length (remembered between runs: gui.window.preferences)


class QuestionPanel(QtWidgets.QWidget):
    """Type a question, press Enter or Ask. Earlier questions complete as you type, and Up / Down
    in the box go back and forth through them (as a shell's history: Down past the newest gives
    back what was typed). The objects choice: "auto" proposes one object per hot region of the
    heat map when the question asks for several things ("where are the dogs?", "how many ..."),
    else one."""

    ask_requested = QtCore.Signal(str)
    instances_changed = QtCore.Signal(str)  # "auto", "one" or "several"

    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.edit = QtWidgets.QLineEdit()
        self.edit.setObjectName("questionEdit")
        self.edit.setPlaceholderText("Ask about this image, e.g. what is in the cup?")
        self.edit.setClearButtonEnabled(True)
        self._history = QtCore.QStringListModel(self)
        completer = QtWidgets.QCompleter(self._history, self)
        completer.setCaseSensitivity(QtCore.Qt.CaseSensitivity.CaseInsensitive)
        completer.setFilterMode(QtCore.Qt.MatchFlag.MatchContains)
        self.edit.setCompleter(completer)
        self.edit.installEventFilter(self)  # Up / Down: the history
        self.edit.textEdited.connect(self._forget_place)
        self._place = -1  # where Up / Down are in the history (-1: the text typed, kept in _draft)
        self._draft = ""
        self.ask_button = QtWidgets.QPushButton("Ask")
        self.ask_button.setObjectName("askButton")
        self.ask_button.setDefault(True)
        self.ask_button.setToolTip("Ask the question (Enter): heat map, points, mask and answer")
        self.instances_box = QtWidgets.QComboBox()
        self.instances_box.setObjectName("instancesBox")
        for value, text in INSTANCE_CHOICES:
            self.instances_box.addItem(text, value)
        self.instances_box.setToolTip("Objects a question proposes: one, one per separate hot region of its heat "
                                      "map, or auto (several for plural and counting questions)")
        self.instances_box.currentIndexChanged.connect(
            lambda i: self.instances_changed.emit(self.instances_box.itemData(i)))
        self.hint = QtWidgets.QLabel("")
        self.hint.setObjectName("questionHint")
        self.hint.setWordWrap(True)
        row = QtWidgets.QHBoxLayout()
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.edit, 1)
        row.addWidget(self.instances_box)
        row.addWidget(self.ask_button)
        layout = QtWidgets.QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 2)
        layout.addLayout(row)
        layout.addWidget(self.hint)
        self.hint.hide()
        self.edit.returnPressed.connect(self.request_ask)
        self.ask_button.clicked.connect(self.request_ask)

    @property
    def question(self) -> str:
        return self.edit.text().strip()

    def set_question(self, text: str) -> None:
        if text != self.edit.text():
            self.edit.setText(text)

    def show_image_question(self, text: str) -> None:
        """The shown image's question; on an image not asked yet, the last question asked, so
        Enter alone asks it there too (one question over a folder: Enter, Shift+D, Enter, ...)."""
        history = self._history.stringList()
        self.set_question(text or (history[0] if history else ""))

    def remember(self, question: str) -> None:
        items = [q for q in self._history.stringList() if q != question]
        self._history.setStringList([question] + items[:QUESTIONS_KEPT - 1])
        self._place = -1

    def history(self) -> list[str]:
        """The questions asked, newest first."""
        return self._history.stringList()

    def set_history(self, questions: list[str]) -> None:
        self._history.setStringList(list(dict.fromkeys(questions))[:QUESTIONS_KEPT])
        self._place = -1

    def eventFilter(self, watched: QtCore.QObject, event: QtCore.QEvent) -> bool:  # noqa: N802 (Qt's name)
        if watched is self.edit and event.type() == QtCore.QEvent.Type.KeyPress and \
                event.key() in (QtCore.Qt.Key.Key_Up, QtCore.Qt.Key.Key_Down) and \
                event.modifiers() in (QtCore.Qt.KeyboardModifier.NoModifier, QtCore.Qt.KeyboardModifier.KeypadModifier):
            popup = self.edit.completer().popup()
            if not popup.isVisible():  # (the completer's list takes them while it is open)
                self._step(1 if event.key() == QtCore.Qt.Key.Key_Up else -1)
                return True
        return super().eventFilter(watched, event)

    def _step(self, delta: int) -> None:
        questions = self._history.stringList()
        place = max(-1, min(self._place + delta, len(questions) - 1))
        if place == self._place:
            return
        if self._place == -1:
            self._draft = self.edit.text()
        self._place = place
        self.edit.setText(self._draft if place == -1 else questions[place])

    def _forget_place(self, _text: str) -> None:
        self._place = -1  # typing starts from the newest again

    def show_hint(self, text: str) -> None:
        self.hint.setText(text)
        self.hint.setVisible(bool(text))

    def request_ask(self) -> None:
        question = self.question
        try:
            clean_question_text(question)
        except InputError:
            self.show_hint("Type a question first.")
            return
        self.show_hint("")
        self.remember(question)
        self.ask_requested.emit(question)
