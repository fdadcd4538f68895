"""Battery (issue 15, item 5): a question longer than the models read is answered on the part
they read, and ``qmask ask`` says which part: a note on stderr and JSON fields."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from engine.vqa.question_use import question_use

ROOT = Path(__file__).resolve().parents[2]
LONG = ("is the man on the left of the picture holding a red umbrella or a blue one while standing next to "
        "the old wooden bench near the river with a dog at his feet and a bicycle behind him?")


@pytest.fixture()
def photo(tmp_path) -> Path:
    path = tmp_path / "photo.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (72, 100, 3), dtype=np.uint8)).save(path)
    return path


@pytest.fixture(scope="module")
def tokenizers(tiny_models_dir):
    from transformers import AutoTokenizer, BlipProcessor

    return (BlipProcessor.from_pretrained(str(tiny_models_dir / "itm")),
            AutoTokenizer.from_pretrained(str(tiny_models_dir / "qa")))


def test_the_used_part_is_the_first_33_word_pieces(tokenizers):
    itm, qa = tokenizers
    tok = itm.tokenizer
    words = "what is the red thing on the table near the window".split()
    question = " ".join((words * 10)[:60])
    pieces = tok(question, add_special_tokens=False)["input_ids"]
    use = question_use(itm, question + "?", qa)
    assert use.word_pieces == len(pieces) > 33 and use.heat_limit == 33 and use.truncated
    assert question.startswith(use.used) and len(use.used) < len(question)
    assert tok(use.used, add_special_tokens=False)["input_ids"] == pieces[:33]  # exactly what BLIP reads
    assert use.used in use.note() and "Ask a shorter question" in use.note()
    assert not use.answer_truncated and "The answer model read the whole question." in use.note()
    short = question_use(itm, "what is on the table?", qa)
    assert not short.truncated and short.used == "what is on the table?" and short.note() == ""
    # 33 pieces fit, 34 do not
    fits = tok.decode(pieces[:33])
    assert not question_use(itm, fits, qa).heat_truncated
    assert question_use(itm, tok.decode(pieces[:34]), qa).heat_truncated


def test_a_question_that_fills_the_answer_model_says_so(tokenizers):
    itm, qa = tokenizers
    use = question_use(itm, "what colour is the umbrella " * 120, qa)
    assert use.heat_truncated and use.answer_truncated and use.answer_limit == qa.model_max_length
    assert "fills the answer model's" in use.note()


def test_ask_reports_the_used_part_on_stderr_and_in_json(tmp_path, photo, tiny_models_dir):
    out = tmp_path / "out.json"
    result = subprocess.run([sys.executable, "-m", "gui.main", "ask", str(photo), LONG, "--models",
                             str(tiny_models_dir), "--device", "cpu", "--num-captions", "2", "--json", str(out)],
                            cwd=ROOT, capture_output=True, text=True, timeout=300,
                            env={**os.environ, "QMASK_MODELS_DIR": ""})
    assert result.returncode == 0, result.stderr
    data = json.loads(out.read_text())
    assert data["question"] == LONG and data["question_truncated"] is True
    used = data["question_used"]
    assert LONG.startswith(used) and 20 < len(used) < len(LONG) - 20
    assert f'note: The question is longer than the heat-map model reads' in result.stderr
    assert f'follow only "{used}"' in result.stderr
    assert any(used in note for note in data["notes"])


def test_short_question_json_says_nothing_was_cut(tmp_path, photo, tiny_models_dir):
    from support.commands import qmask_ask

    out = tmp_path / "out.json"
    assert qmask_ask(str(photo), "what is on the table?", "--models", str(tiny_models_dir), "--device", "cpu",
                     "--num-captions", "2", "--json", str(out)) == 0
    data = json.loads(out.read_text())
    assert data["question_truncated"] is False and data["question_used"] == "what is on the table?"
