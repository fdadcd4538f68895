"""Show or define a project's class list: the classes objects are labelled with.

The class list is defined once per project: typed here (or in the app), or read from a
classes.txt (one name a line), a YOLO data.yaml (``names``) or a COCO file's ``categories``.
Classes keep their ids (COCO ``category_id``; YOLO's index order) and colours; the app's digit
keys 1-9 pick the first nine.

    qmask classes pets.qmask                         # list: id, name, colour, objects
    qmask classes pets.qmask --add dog cat "traffic light"
    qmask classes pets.qmask --from data.yaml
    qmask classes pets.qmask --rename dog puppy
"""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("project", help="project file (*.qmask)")
    parser.add_argument("--add", nargs="+", metavar="NAME", help="add classes (those already there stay as they are)")
    parser.add_argument("--from", dest="source", metavar="FILE",
                        help="add the classes of a classes.txt, a data.yaml or a COCO JSON file, in their order")
    parser.add_argument("--rename", nargs=2, metavar=("OLD", "NEW"), help="rename a class (its objects follow)")


def run(args: argparse.Namespace) -> int:
    from ..project import Project
    from ..project.class_lists import read_class_list

    project = Project.open(args.project, writer="classes")
    try:
        if args.source:
            project.set_classes(read_class_list(args.source))
        if args.add:
            project.set_classes(args.add)
        if args.rename:
            project.rename_category(*args.rename)
        counts = project.category_counts()
        cats = project.categories
        if not cats:
            print("No classes yet: add some with --add NAME ... or --from FILE.")
        for c in cats:
            r, g, b = c.rgb
            print(f"{c.id:>4}  {c.name}  #{r:02x}{g:02x}{b:02x}  {counts.get(c.id, 0)} object(s)")
    finally:
        project.close()
    return 0
