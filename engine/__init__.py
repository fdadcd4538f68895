"""QMask engine: models, heat maps, points, masks, fusion, captions, answers, export.

Qt-free by contract (see ``[tool.importlinter]`` in pyproject.toml): everything here runs
headless, from the command line, the GUI's worker thread or a test.
"""

__version__ = "0.1.0"
