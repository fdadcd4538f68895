"""Architecture contracts: the engine never imports Qt or the GUI, gui/'s folders import only the layers below
(import-linter, as napari does), and the README's layout table names every folder."""

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_import_linter_contracts_hold():
    lint = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run([str(lint), "--config", str(ROOT / "pyproject.toml")], cwd=ROOT,
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 kept, 0 broken" in result.stdout


def test_cli_help_needs_no_qt():
    code = ("import sys; from gui.main import main\n"
            "try:\n    main(['ask', '--help'])\nexcept SystemExit:\n    pass\n"
            "bad = [m for m in sys.modules if m.startswith(('PySide6', 'pyqtgraph', 'torch'))]\n"
            "assert not bad, bad")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_the_readme_layout_names_every_source_folder_and_each_gui_folder_says_what_it_holds():
    """The README's layout table lists each folder of engine/ and gui/; every package of gui/ has a
    one-line docstring of what lives there."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    layout = readme[readme.index("## Layout"):]
    layout = layout[:layout.index("\n## ")]
    folders = sorted(p.parent.relative_to(ROOT).as_posix() for top in ("engine", "gui")
                     for p in (ROOT / top).glob("*/__init__.py"))
    assert "gui/control" in folders and "engine/export" in folders  # (the glob found them)
    missing = [f for f in folders if f"`{f}/`" not in layout]
    assert not missing, f"folders the README's layout table does not name: {missing}"
    for init in (ROOT / "gui").rglob("__init__.py"):
        doc = ast.get_docstring(ast.parse(init.read_text(encoding="utf-8")))
        assert doc and "\n" not in doc.strip(), f"{init.relative_to(ROOT)}: a one-line docstring"
