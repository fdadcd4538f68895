"""QMask desktop app (PySide6 + pyqtgraph). Reaches the models only through the engine worker thread."""
