"""Import a dataset into a project, to continue correcting it: COCO instances (RLE or polygons),
YOLO segmentation, LabelMe JSON or PNG instance masks.

SOURCE is a COCO .json file or a folder in COCO's standard layout (annotations/instances_*.json,
images/), a YOLO data.yaml or dataset folder (labels/ with classes.txt), a folder of LabelMe
.json files, or a folder with masks/ (QMask's PNG export); --format says which when the
guess is wrong. Each is read as its own tools read it (YOLO polygons as Ultralytics fills them,
LabelMe shapes as labelme does). Each annotation becomes an object of its class (category names
join the project's class list); images are found where the dataset says (COCO file_name under
--images, then by file name anywhere below it; YOLO and LabelMe beside their labels; --images to
look elsewhere); nothing outside the dataset's folders is read. Bad input stops the import with
the file (and line) named; the import is all or nothing, and a failed one leaves the project as
it was. Images not found are kept: relocate them later with ``qmask export PROJECT ... --images
DIR``, or open the project in the app and use "Locate folder…".
"""

from __future__ import annotations

import argparse
import sys


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("source", metavar="SOURCE",
                        help="a COCO .json file or standard-layout folder, a YOLO data.yaml or folder, a folder of "
                             "LabelMe .json files, or a folder with masks/ (PNG instance masks)")
    parser.add_argument("--format", "-f", default="auto", choices=("auto", "coco", "yolo", "labelme", "png"),
                        help="the dataset's format (default: guessed from SOURCE)")
    parser.add_argument("--images", metavar="DIR",
                        help="the folder holding the dataset's images, when they are not where the dataset says "
                             "(COCO: file_name is relative to it; default: images/ beside annotations/, else "
                             "the JSON file's folder)")
    parser.add_argument("--project", required=True, help="project to create (*.qmask)")
    parser.add_argument("--merge", action="store_true",
                        help="add to an existing project (safe while the app or a batch writes it too) "
                             "instead of refusing to overwrite it")


def run(args: argparse.Namespace) -> int:
    from ..export.importers import import_dataset

    project, report = import_dataset(args.source, args.project, fmt=args.format, images_dir=args.images,
                                     merge=args.merge)
    project.close()  # the last connection out folds the journal back into the file
    print(report)
    if report.not_found:
        print(f"qmask import: {len(report.not_found)} image file(s) not found. Once you know where they are, "
              f"`qmask export {project.path} --images DIR ...` relocates them (and updates the project), or open "
              "the project in the app and use “Locate folder…”.", file=sys.stderr)
    print(f"Project: {project.path}")
    return 0 if report.images else 1
