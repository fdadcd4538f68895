"""Export a project as a dataset: COCO (RLE or exact polygons), YOLO segmentation, LabelMe or PNG masks;
overlay images with --overlays DIR.

Each format is written in its readers' convention: COCO polygons on pixel edges (pycocotools),
YOLO and LabelMe polygons through pixel centres (Ultralytics, supervision, labelme), LabelMe
files named after their images, data.yaml without an absolute path. --copy-images makes a
self-contained dataset in the format's standard layout (images copied upright, relative
paths), split into train and val with --val. --grounded-vqa adds, beside a COCO file, each
question with its answer, captions and the instances it grounds (JSON Lines).

Every export also writes provenance/qmask-provenance.json (where no dataset reader looks):
questions, answers, automatic points versus user edits, the IoU between the automatic and the
final mask, model ids and random weights, and each annotation's edit log. ``--format qmask-json`` writes the project itself as the JSON
interchange file (for sharing, diffing, version control); any command that takes a project
takes that file too (it is converted into a ``.qmask`` beside it). An export that fails
leaves nothing new behind. The project is only read (unless --images relocates images).

--overlays DIR writes the overlay images the app's File > Export… writes: one PNG per exported
object, the image with its question's heat map, its mask and its points. It goes with --format
(both are written, or neither) or alone.

YOLO, LabelMe, PNG, overlays and self-contained exports own their output folder: an export into the
folder of an earlier one replaces it whole (no file of the earlier export stays); a folder
holding other files is refused unless --force. Over-long file names are shortened (their
beginning and a short hash).

Images that moved since the project was made: pass ``--images DIR`` (the folder they are in
now). Missing images are looked for there, by their old relative path and then by name (a
recorded SHA-256 must match), and the project is updated (one transaction) before the
export. The app does the same from its "Locate folder…" banner.
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..project import Project


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("project", help="the project (*.qmask, or a *.qmask.json interchange file)")
    parser.add_argument("--format", "-f", choices=("coco", "yolo", "labelme", "png", "qmask-json"),
                        help="dataset format, or qmask-json: the project as a JSON interchange file (needs --out)")
    parser.add_argument("--out", "-o",
                        help="output: a .json file or a folder for COCO (a folder with --copy-images); a .json "
                             "file for qmask-json; a folder for the others")
    parser.add_argument("--overlays", metavar="DIR",
                        help="also (or, without --format, only) write overlay images into the folder DIR: one PNG "
                             "per exported object, the image with its heat map, mask and points, as the app's "
                             "export writes them (--only-accepted and --force apply)")
    parser.add_argument("--polygons", action="store_true",
                        help="COCO: write polygons instead of RLE (exact, holes kept with a zero-width cut)")
    parser.add_argument("--only-accepted", action="store_true", help="export accepted annotations only")
    parser.add_argument("--tolerance", type=float, default=0.0,
                        help="simplify polygons by this many pixels (default 0: exact)")
    parser.add_argument("--labelme-masks", action="store_true",
                        help="LabelMe: write every annotation as a mask shape, not polygons")
    parser.add_argument("--copy-images", action="store_true",
                        help="a self-contained dataset: copy the images into OUT (upright: EXIF orientation "
                             "applied) in the format's standard layout, every path relative (COCO: images/ and "
                             "annotations/instances_default.json; YOLO: images/ labels/ data.yaml; LabelMe: each "
                             "image beside its JSON; PNG: images/ masks/ labels/)")
    parser.add_argument("--val", type=float, default=0.0, metavar="FRACTION",
                        help="with --copy-images: put this share of the images (e.g. 0.2) in a val split, the "
                             "rest in train (images/train, images/val, ...; COCO instances_train/val.json)")
    parser.add_argument("--seed", type=int, default=0, help="the train/val split's seed (default 0)")
    parser.add_argument("--coco-attributes", action="store_true",
                        help="COCO: also write question, answer and acceptance as CVAT-style 'attributes' "
                             "(datumaro's validators report them as undefined; they are always in each "
                             "annotation's 'qmask' field, which readers ignore)")
    parser.add_argument("--yolo-parts", action="store_true",
                        help="YOLO: one row per connected part of a mask instead of one per object (every pixel "
                             "exact, but each part reads as an instance; by default parts are joined by bridges, "
                             "whose background pixels a reader fills)")
    parser.add_argument("--grounded-vqa", action="store_true",
                        help="COCO: also write, beside each COCO file, <stem>.grounded_vqa.jsonl: per image, each "
                             "question with its answer, the captions it used and the instances it grounds "
                             "(COCO annotation ids and RLE masks), for training and evaluating grounded VQA")
    parser.add_argument("--no-copy-images", action="store_true",
                        help="YOLO without --copy-images: do not link the images into OUT/images")
    parser.add_argument("--force", action="store_true",
                        help="YOLO, LabelMe, PNG, --copy-images: replace the output folder's contents even when it "
                             "holds files that are not an earlier QMask export (they are deleted)")
    parser.add_argument("--images", metavar="DIR",
                        help="the folder the project's images are in now, if they moved: missing images are "
                             "found there and the project file is updated before exporting")


RELOCATE_HINT = ("pass --images DIR (the folder they are in now) to relocate them, or open the project in the "
                 "app and use “Locate folder…”")


def run(args: argparse.Namespace) -> int:
    from ..errors import InputError
    from ..project import Project

    if args.format is None and args.overlays is None:
        raise InputError("Say what to export: --format FORMAT --out OUT, --overlays DIR, or both.")
    if args.format is not None and args.out is None:
        raise InputError(f"--format {args.format} needs --out: the file or folder to write.")
    if args.format is None and args.out is not None:
        raise InputError("--out is where --format writes; give --format too (overlays go to --overlays DIR).")

    # Only reading (unless --images relocates): a damaged project, or one in a read-only
    # folder, is read as it is and never written.
    project = Project.open(args.project, writer="export", read_only=not args.images)
    try:
        return _export(project, args)
    finally:
        project.close()  # the last connection out folds the journal back into the file


def _export(project: "Project", args: argparse.Namespace) -> int:
    from ..export.overlays import staged_overlays

    if project.notice:
        print(f"qmask export: {project.notice}", file=sys.stderr)
    if args.images and project.missing_images():
        relocated = project.relocate(args.images)
        print(f"qmask export: relocated under {args.images}: {relocated}", file=sys.stderr)
    if args.overlays is None:
        return _dataset(project, args)
    # Drawn first (reading every image: what fails most), put in place once the dataset is
    # written: a failure of either leaves nothing new behind.
    with staged_overlays(project, args.overlays, only_accepted=args.only_accepted, overwrite=args.force) as staged:
        if args.format is not None:
            _dataset(project, args)
        files = staged.commit()
    print(f"Wrote {len(files)} overlay image(s) to {staged.out}.")
    return 0


def _dataset(project: "Project", args: argparse.Namespace) -> int:
    from ..export import export_project

    if args.format == "qmask-json":
        from ..project.interchange import write_json_project

        out = write_json_project(project, args.out)
        print(f"Wrote the project ({project.count_images()} image(s)) as a JSON interchange file to {out}.")
        return 0
    missing = project.missing_images()
    if missing and args.format == "yolo" and not args.no_copy_images and not args.copy_images:
        print(f"qmask export: warning: {len(missing)} image file(s) are missing and will not be "
              f"copied; {RELOCATE_HINT}.", file=sys.stderr)
    report = export_project(project, args.format, args.out, polygons=args.polygons,
                            only_accepted=args.only_accepted, tolerance=args.tolerance,
                            labelme_force_mask=args.labelme_masks, copy_images=not args.no_copy_images,
                            self_contained=args.copy_images, val_fraction=args.val, seed=args.seed,
                            coco_attributes=args.coco_attributes, grounded_vqa=args.grounded_vqa,
                            yolo_split_parts=args.yolo_parts, overwrite=args.force)
    print(report)
    return 0
