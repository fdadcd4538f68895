"""The README's 'Scripting' example runs as written (issue 23): the code block under '## Scripting'
is taken from README.md and executed on a new project and a generated photo (its one settings line,
``PROJECT, PHOTO, MODELS = ...``, given the test's paths), and the objects it leaves are checked in
the project file:

- on the tiny random models as they are: a random Grad-CAM is one smear and random EfficientSAM
  masks are much alike, so the dogs come as one proposal (kept, then dropped);
- with a heat map holding a hot spot on each of the photo's three dogs and a decoder that outlines
  the thing under the click (what trained BLIP and EfficientSAM give), the rest (captions, answer)
  the tiny models': three proposals, the first kept, the last dropped.
"""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from engine.annotation.pipeline import Pipeline
from engine.project import Project
from engine.prompts import POSITIVE
from engine.results import HeatmapResult, MaskCandidate, SegmentationResult

ROOT = Path(__file__).resolve().parents[3]

# The example as README.md shows it (kept equal to it by the first test).
SNIPPET = '''\
from engine.annotation import Annotator
from engine.prompts import Point

PROJECT, PHOTO, MODELS = "pets.qmask", "photos/park.jpg", "models/"
with Annotator.open(PROJECT, PHOTO, models_dir=MODELS) as a:
    run = a.ask("where are the dogs?")                     # one proposal per hot region
    a.keep(run.object_uids[0])                             # yours now: asking again leaves it alone
    a.drop(run.object_uids[-1])                            # not a dog
    cat = a.new_object([Point(410, 220)], category="cat")  # EfficientSAM from one click
    a.paint(cat, [(400, 200), (430, 240)], radius=6)       # a brush stroke over its mask
    a.undo()                                               # the stroke is gone again
    a.accept_all()
    print([(o.category, o.accepted) for o in a.objects])
'''
SETTINGS_LINE = re.compile(r"^PROJECT, PHOTO, MODELS = .*$", re.MULTILINE)


def readme_example() -> str:
    """The first ``python`` code block under the '## Scripting' heading of README.md."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = re.search(r"^## Scripting\n(.*?)(?=^## )", text, flags=re.MULTILINE | re.DOTALL)
    assert section, "README.md has no '## Scripting' section"
    block = re.search(r"^```python\n(.*?)^```", section.group(1), flags=re.MULTILINE | re.DOTALL)
    assert block, "the '## Scripting' section has no python code block"
    return block.group(1)


def test_the_readme_shows_this_example():
    assert readme_example() == SNIPPET, "README.md's Scripting example changed: update SNIPPET (and this test) with it"
    assert len(SETTINGS_LINE.findall(SNIPPET)) == 1


DOGS = ((60, 70), (70, 250), (220, 120))  # (y, x) of each 70 x 50 dog in the 480 x 320 photo


def _photo(path: Path) -> Path:
    """A 480 x 320 photo: three tan dogs on grass and a grey cat where the example clicks."""
    rng = np.random.default_rng(11)
    a = np.zeros((320, 480, 3), np.uint8)
    a[...] = (40, 110, 50)
    a += rng.integers(0, 20, a.shape, dtype=np.uint8)
    for y, x in DOGS:
        a[y:y + 50, x:x + 70] = (200, 170, 120)
    a[195:245, 385:440] = (90, 90, 95)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(a).save(path)
    return path


def _three_dogs(heatmap, captions):
    """Pipeline.heatmap as a trained BLIP gives it here, a hot spot on each dog on a 24 x 24 grid
    (the tiny model's own grid is too coarse to hold three); Pipeline.captions sampling from that
    map brought back to the tiny model's grid."""
    def heatmap_on_the_dogs(self, question: str) -> HeatmapResult:
        self.model_grid = heatmap(self, question).question_map.shape
        rr, cc = np.mgrid[0:24, 0:24]
        heat = np.zeros((24, 24), np.float32)
        for k, (y, x) in enumerate(DOGS):
            r, c = (y + 25) / 320 * 24 - 0.5, (x + 35) / 480 * 24 - 0.5
            heat += (1.0 - 0.2 * k) * np.exp(-((rr - r) ** 2 + (cc - c) ** 2) / (2 * 1.5 ** 2))
        return HeatmapResult(question=question, question_map=heat, token_maps=heat[None], tokens=("dogs",),
                             itm_probability=0.9)

    def captions_on_the_models_grid(self, sampling_map, *args, **kwargs):
        gh, gw = self.model_grid
        return captions(self, cv2.resize(np.asarray(sampling_map, np.float32), (gw, gh), interpolation=cv2.INTER_AREA),
                        *args, **kwargs)

    return heatmap_on_the_dogs, captions_on_the_models_grid


def _outline(self, points=(), box=None, multimask=True) -> SegmentationResult:
    """Pipeline.segment as a trained EfficientSAM gives it here: the patch of the photo's colour
    under the first positive point."""
    rgb = self.encoders.rgb  # the image set on the pipeline
    p = next(p for p in points if p.label == POSITIVE)
    colour = rgb[int(p.y), int(p.x)].astype(int)
    alike = (np.abs(rgb.astype(int) - colour).max(axis=2) < 25).astype(np.uint8)  # (noise: 0 to 19)
    _, labels = cv2.connectedComponents(alike)
    mask = labels == labels[int(p.y), int(p.x)]
    return SegmentationResult(candidates=(MaskCandidate(mask, np.zeros((256, 256), np.float32), 0.95),),
                              points=tuple(points), box=box)


def _run_example(tmp_path: Path, models: Path) -> tuple[dict, str, Path, Path]:
    project, photo = tmp_path / "pets.qmask", _photo(tmp_path / "photos" / "park.png")
    code = SETTINGS_LINE.sub(f"PROJECT, PHOTO, MODELS = {str(project)!r}, {str(photo)!r}, {str(models)!r}",
                             readme_example())
    out, scope = io.StringIO(), {"__name__": "readme_example"}
    with contextlib.redirect_stdout(out):
        exec(compile(code, "README.md (Scripting)", "exec"), scope)
    return scope, out.getvalue(), project, photo


def _check_left(scope: dict, printed: str, project: Path, photo: Path) -> tuple[list[str], dict]:
    """What every run of the example leaves: the run's proposals but the last, and the cat drawn
    from one click, all accepted; the cat's stroke undone; what it printed. Returns the proposals
    (as the ask wrote them) and the objects left."""
    run, cat = scope["run"], scope["cat"]
    with Project.open(project) as p:  # what the script left, as the next program reads it
        img = p.find_image(photo)
        proposed = [e.object_uid for e in p.edits(img.id) if e.action == "ask" and e.object_uid]
        assert run.question == "where are the dogs?" and run.instances == "several" and proposed
        objects = {o.uid: o for o in img.objects}
        assert set(objects) == (set(proposed) - {proposed[-1]}) | {cat}
        assert all(o.accepted for o in objects.values()) and run.object_uids == proposed[:-1]
        drawn = objects[cat]
        assert (drawn.category, drawn.source, drawn.stroke_add_rle, drawn.stroke_erase_rle) == ("cat", "manual", None, None)
        assert [(pt.x, pt.y) for pt in drawn.points] == [(410.0, 220.0)] and drawn.mask_size == (320, 480)
        actions = [e.action for e in p.edits(img.id) if e.object_uid == cat]
        assert "stroke" in actions and "undo stroke" in actions and actions[-1] == "accept"
        assert [c.name for c in p.categories] == ["cat"] and [r.question for r in img.runs] == ["where are the dogs?"]
        shown = [(o.category, o.accepted) for o in sorted(img.objects, key=lambda o: o.order)]
    assert printed.strip() == repr(shown)  # what it printed: the objects, bottom first
    return proposed, objects


def test_the_scripting_example_runs_on_the_tiny_models(tmp_path, tiny_models_dir):
    _check_left(*_run_example(tmp_path, tiny_models_dir))


def test_the_scripting_example_keeps_one_dog_drops_another_and_draws_the_cat(tmp_path, tiny_models_dir, monkeypatch):
    heatmap, captions = _three_dogs(Pipeline.heatmap, Pipeline.captions)
    monkeypatch.setattr(Pipeline, "heatmap", heatmap)
    monkeypatch.setattr(Pipeline, "captions", captions)
    monkeypatch.setattr(Pipeline, "segment", _outline)
    scope, printed, project, photo = _run_example(tmp_path, tiny_models_dir)
    proposed, objects = _check_left(scope, printed, project, photo)
    assert len(proposed) == 3  # one per dog
    kept, other = objects[proposed[0]], objects[proposed[1]]
    assert not kept.proposal and kept.accepted
    for obj, (y, x) in ((kept, DOGS[0]), (other, DOGS[1])):  # each dog's own outline
        expected = np.zeros((320, 480), bool)
        expected[y:y + 50, x:x + 70] = True
        np.testing.assert_array_equal(obj.mask(), expected)
    cat = np.zeros((320, 480), bool)
    cat[195:245, 385:440] = True
    np.testing.assert_array_equal(objects[scope["cat"]].mask(), cat)  # the stroke undone: the outline alone
