"""Import a COCO instances dataset (RLE or polygons) into a project, to continue correcting it.

Category names become labels; images are matched by file_name under --images (then by file
name anywhere below it). Images not found are kept and can be relocated in the app.
"""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("coco_json", help="COCO instances JSON file")
    parser.add_argument("--images", required=True, help="folder holding the dataset's images")
    parser.add_argument("--project", required=True, help="project file to create (*.qmask.json)")
    parser.add_argument("--merge", action="store_true",
                        help="add to an existing project instead of refusing to overwrite it")


def run(args: argparse.Namespace) -> int:
    from ..import_coco import import_coco_to_project

    project, report = import_coco_to_project(args.coco_json, args.images, args.project, merge=args.merge)
    print(report)
    print(f"Project: {project.path}")
    return 0 if report.images else 1
