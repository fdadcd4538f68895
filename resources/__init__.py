"""Files shipped with QMask: sample photographs (CC0, see LICENSES.md)."""

from __future__ import annotations

from pathlib import Path

RESOURCES_DIR = Path(__file__).resolve().parent

#: The photograph the app opens when started without images.
SAMPLE_IMAGE = RESOURCES_DIR / "coffee.png"
#: A sensible first question for :data:`SAMPLE_IMAGE`.
SAMPLE_QUESTION = "what is in the cup?"


def sample_images() -> list[Path]:
    """All shipped sample photographs, sorted by name."""
    return sorted(RESOURCES_DIR.glob("*.png"))
