"""Reliability: a hostile or damaged COCO file given to ``qmask import`` ends in a message
naming the file and the problem (whole-file problems: nothing is created; one bad annotation:
it is skipped and said), never a traceback. Before: TypeError for a list or a dict where an
id belongs, RecursionError for deep nesting."""

from __future__ import annotations

import json

import pytest

from engine.commands import cli

from .hostile import coco, png, square, write_json


def _image(**over):
    return {"id": 1, "file_name": "a.png", "width": 12, "height": 10, **over}


def _ann(**over):
    return {"id": 7, "image_id": 1, "category_id": 1, "segmentation": [square(1, 1, 6, 6)], **over}


def _import(tmp_path, doc, capsys):
    png(tmp_path / "images" / "a.png")
    path = write_json(tmp_path / "coco.json", doc)
    rc = cli.main(["import", str(path), "--images", str(tmp_path / "images"), "--project", str(tmp_path / "p.qmask")])
    out = capsys.readouterr()
    return rc, out.out, out.err


REFUSED = {  # the whole file is refused: (document, words of the message)
    "list as image id": (coco([_image(id=[1])], [_ann()]), "images[0].id: expected a number or text, found a list"),
    "dict as image id": (coco([_image(id={"a": 1})], [_ann()]), "images[0].id: expected a number or text"),
    "list as category id": (coco([_image()], [_ann()], [{"id": [1], "name": "x"}]), "categories[0].id"),
    "width as text": (coco([_image(width="12")], [_ann()]), "images[0].width"),
    "width true": (coco([_image(width=True)], [_ann()]), "images[0].width"),
    "huge width": (coco([_image(width=2 ** 40)], [_ann()]), "images[0].width: must be from 1 to"),
    "deep nesting": (json.dumps(coco([_image()], [_ann()])).replace('"iscrowd_x"', "") .replace(
        '"annotations": [', '"annotations": [' + "[" * 3000 + "]" * 3000 + ", ", 1), "nests"),
    "NaN": (json.dumps(coco([_image()], [_ann(segmentation=[[float("nan")] * 6])])), "NaN"),
    "huge integer": (json.dumps(coco([_image()], [_ann(area=10 ** 30)])), "too large"),
    "not UTF-8": ("", "not UTF-8"),
    "lone surrogate escape": (json.dumps(coco([_image(file_name="\udcff.png")], [_ann()])), "not valid Unicode"),
}


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_whole_file_problems_are_refused_and_create_nothing(tmp_path, capsys, case):
    doc, words = REFUSED[case]
    if case == "not UTF-8":
        png(tmp_path / "images" / "a.png")
        (tmp_path / "coco.json").write_bytes(b'{"images": [], "x": "\xff"}')
        rc = cli.main(["import", str(tmp_path / "coco.json"), "--images", str(tmp_path / "images"),
                       "--project", str(tmp_path / "p.qmask")])
        err = capsys.readouterr().err
    else:
        rc, _out, err = _import(tmp_path, doc, capsys)
    assert rc == 1 and "coco.json" in err and words in err, err
    assert not (tmp_path / "p.qmask").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["coco.json", "images"]


SKIPPED = {  # one annotation is skipped and said; the rest imports
    "dict as annotation image id": (_ann(image_id={"a": 1}), "image_id"),
    "list as annotation category id": (_ann(category_id=[1]), "category"),
    "segmentation as text": (_ann(segmentation="1 2 3"), "neither RLE nor a list of polygons"),
    "RLE counts as object": (_ann(segmentation={"size": [10, 12], "counts": {"a": 1}}), "counts"),
    "RLE size as text": (_ann(segmentation={"size": "10x12", "counts": "abc"}), "size"),
    "polygon of text": (_ann(segmentation=[["1", "2", "3", "4", "5", "6"]]), "finite numbers"),
    "attributes as list": (_ann(attributes=[1, 2], id=[3]), None),
}


@pytest.mark.parametrize("case", sorted(SKIPPED))
def test_one_bad_annotation_is_skipped_and_said(tmp_path, capsys, case):
    bad, words = SKIPPED[case]
    rc, out, err = _import(tmp_path, coco([_image()], [_ann(id=1), bad]), capsys)
    assert rc == 0, err
    if words is None:
        assert "Imported 2 annotation(s)" in out or "Imported 1 annotation(s)" in out, out
    else:
        assert "Imported 1 annotation(s) on 1 image(s)" in out and "1 annotation(s) skipped" in out, out
        assert words in out, out
