"""F1: keyboard shortcuts (from gui.window.actions, so always current), mouse gestures, what the colours mean."""

from __future__ import annotations

import html

from PySide6 import QtWidgets

from gui.window.actions import ACTIONS, MOUSE_GESTURES

LEGEND = """
<h3>On the canvas</h3>
<ul>
<li><span style="color:#2ecc71">●</span> positive point, <span style="color:#e74c3c">◆</span> negative point;
 a dashed ring marks an automatic point (from the heat map), a solid white ring a point you placed.
 Hover a point for its number and heat-map score.</li>
<li>Heat map: where BLIP looked to match the question (Grad-CAM), stretched over the whole image.</li>
<li>Fused map: heat map mixed with the mask (alpha = share of the heat map); it guides the captions.</li>
<li>Mask: cyan fill and outline; choose among EfficientSAM's three candidates on the right.</li>
</ul>
<h3>Keys and focus</h3>
<p>Single-letter keys act on the image wherever the focus is, except while you type in a text box.
<code>/</code> goes to the question box; Enter asks and Esc leaves it, and the keys act on the image again.
A focused list, slider or spin box keeps PgUp/PgDn, Home/End and the arrows for itself. One question over a
folder: Enter, then Shift+D (every object accepted, next image) on each image.</p>
<h3>Projects</h3>
<p>Everything you do is written at once, edit by edit, into a project file (<code>.qmask</code>, the same
file <code>qmask batch</code> and <code>qmask import</code> write; they may run on it while the app is open, and
what they write shows up in the list). With <code>--project FILE</code> that file is used; otherwise QMask keeps
one project per image folder in its data folder (<code>$QMASK_DATA_DIR/projects</code>, or the system's
per-user application data folder), so opening the same folder again resumes your work. An older
<code>.qmask.json</code> project is converted once into a <code>.qmask</code> beside it.</p>
<p>The same folder keeps your preferences (<code>preferences.json</code>): the layers shown, the heat map's
opacity and colours, <i>Encode images when shown</i>, the window layout, and the models folder chosen in
<i>Engine &gt; Models…</i> (<code>--models</code> and <code>$QMASK_MODELS_DIR</code> come first).</p>
"""


def shortcuts_html() -> str:
    rows = []
    group = None
    for s in ACTIONS:
        if s.group != group:
            group = s.group
            rows.append(f"<tr><td colspan=2><b>{html.escape(group)}</b></td></tr>")
        keys = " / ".join(f"<code>{html.escape(k)}</code>" for k in s.shortcuts) or "—"
        rows.append(f"<tr><td>{html.escape(s.text)}</td><td>{keys}</td></tr>")
    mouse = "".join(f"<tr><td>{html.escape(a)}</td><td>{html.escape(b)}</td></tr>" for a, b in MOUSE_GESTURES)
    return (f"<h3>Keyboard</h3><table cellspacing=4>{''.join(rows)}</table>"
            f"<h3>Mouse</h3><table cellspacing=4>{mouse}</table>{LEGEND}")


class HelpDialog(QtWidgets.QDialog):
    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("QMask help")
        self.resize(560, 680)
        self.browser = QtWidgets.QTextBrowser()
        self.browser.setObjectName("helpText")
        self.browser.setHtml(shortcuts_html())
        buttons = QtWidgets.QDialogButtonBox(QtWidgets.QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        layout = QtWidgets.QVBoxLayout(self)
        layout.addWidget(self.browser)
        layout.addWidget(buttons)
