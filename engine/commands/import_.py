"""Import a COCO instances dataset (RLE or polygons) into a project, to continue correcting it.

Category names become labels; images are matched by file_name under --images (then by file
name anywhere below it); nothing outside --images is read. The import is all or nothing.
Images not found are kept: relocate them later with ``qmask export PROJECT ... --images DIR``,
or open the project in the app and use "Locate folder…".
"""

from __future__ import annotations

import argparse
import sys


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("coco_json", help="COCO instances JSON file")
    parser.add_argument("--images", required=True, help="folder holding the dataset's images")
    parser.add_argument("--project", required=True, help="project to create (*.qmask)")
    parser.add_argument("--merge", action="store_true",
                        help="add to an existing project (safe while the app or a batch writes it too) "
                             "instead of refusing to overwrite it")


def run(args: argparse.Namespace) -> int:
    from ..export.coco_import import import_coco_to_project

    project, report = import_coco_to_project(args.coco_json, args.images, args.project, merge=args.merge)
    project.close()  # the last connection out folds the journal back into the file
    print(report)
    if report.not_found:
        print(f"qmask import: {len(report.not_found)} image file(s) not found. Once you know where they are, "
              f"`qmask export {project.path} --images DIR ...` relocates them (and updates the project), or open "
              "the project in the app and use “Locate folder…”.", file=sys.stderr)
    print(f"Project: {project.path}")
    return 0 if report.images else 1
