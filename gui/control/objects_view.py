"""The shown image's objects in the window: the Objects panel, every object drawn on the canvas,
and the class list (digit keys, the searchable picker, the class-list dialog).

One direction each way, like the presenter and the controller: the session's object notices
(``object_changed(uid, what)``, ``changed("selection"|"objects")``) update the panel's rows and
the objects layer; the panel's and the keys' requests go to the controller's edit intents.

Why a label map: an image may hold 1,000 objects on 12 megapixels. The layer draws a
``LabelMap`` (the top-most object per pixel, :mod:`engine.imaging.label_map`) through a colour
table, so showing, hiding or relabelling an object changes the table only, and a one-object mask
change repaints that object's box. The selected object is drawn on top by the canvas' mask layer
(full resolution, outline), and its entry in the label map follows its mask when it is deselected
(edits of the selected object touch only the mask layer).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6 import QtCore

from engine.imaging.label_map import LabelMap, crop_of, rle_crop
from gui.window.panels.objects_model import ObjectRow

UNLABELLED = (200, 200, 200)  # an object without a class: light grey

if TYPE_CHECKING:
    from gui.control.controller import Controller
    from gui.workspace.session import ImageSession


class ObjectsView(QtCore.QObject):
    """See the module docstring."""

    def __init__(self, controller: "Controller") -> None:
        super().__init__(controller)
        self.c = controller
        self.window = controller.window
        self.panel = controller.window.objects_panel
        self.layer = controller.window.canvas.objects_layer
        self.session: "ImageSession | None" = None
        self.label_map: LabelMap | None = None
        self._dirty: set[str] = set()  # objects whose mask changed while selected: the label map follows later
        self._selected: str | None = None

    # ------------------------------------------------------------------ the shown image
    def show(self, session: "ImageSession | None") -> None:
        if self.session is not None:
            for signal, slot in ((self.session.listener.object_changed, self._on_object), (self.session.listener.changed, self._on_aspect)):
                try:
                    signal.disconnect(slot)
                except (RuntimeError, TypeError):  # pragma: no cover - already disconnected
                    pass
        self.session, self._dirty, self._selected = session, set(), None
        if session is not None:
            session.listener.object_changed.connect(self._on_object)
            session.listener.changed.connect(self._on_aspect)
        self._rebuild()

    def _rebuild(self) -> None:
        s = self.session
        if s is None:
            self.label_map = None
            self.layer.set_label_map(None)
            self.panel.set_rows([])
            return
        self.panel.set_rows(self._rows())
        self._selected = s.selected
        self.panel.set_current(s.selected)
        self._build_map()

    def _build_map(self) -> None:
        s = self.session
        size = None if s is None else (s.image_size or self._record_size(s))
        if size is None:
            self.label_map = None
            self.layer.set_label_map(None)
            return
        w, h = size
        self.label_map = LabelMap(h, w)
        self.label_map.set_objects([(o.uid, self._crop(o)) for o in s.ordered()],
                                   hidden=[o.uid for o in s.objects.values() if o.hidden])
        self.layer.set_label_map(self.label_map)
        self._restyle()

    @staticmethod
    def _record_size(s) -> tuple[int, int] | None:
        for o in s.objects.values():
            size = o.record.mask_size
            if size is not None:
                return size[1], size[0]
        return None

    @staticmethod
    def _crop(obj):
        rle = obj.record.__dict__.get("_mask_rle_value")
        if isinstance(rle, dict) and obj.segmentation is None and obj.corrections.empty:
            return rle_crop(rle)  # from the runs: no full-size decoding
        mask = obj.mask
        return None if mask is None else crop_of(mask)

    def _rows(self) -> list[ObjectRow]:
        """Every object's row, drawing order bottom first (the panel lists the top first)."""
        s = self.session
        colours = self._colours()
        return [self._row(o, i, colours) for i, o in enumerate(s.ordered(), start=1)]

    def _row(self, o, number: int, colours: dict[str, tuple[int, int, int]]) -> ObjectRow:
        r = o.record
        return ObjectRow(uid=o.uid, number=number, category=r.category,
                         colour=colours.get(r.category or "", (160, 160, 160)), source=r.source, question=r.question,
                         accepted=r.accepted, proposal=r.proposal, hidden=o.hidden, review=float(r.review),
                         reasons=tuple(r.reasons))

    def _colours(self) -> dict[str, tuple[int, int, int]]:
        return {c.name: c.rgb for c in self.c.workspace.categories}

    def _restyle(self) -> None:
        s = self.session
        if s is None or self.label_map is None:
            return
        colours = self._colours()
        by_uid = {o.uid: colours.get(o.record.category or "", UNLABELLED) for o in s.objects.values()}
        hidden = {o.uid for o in s.objects.values() if o.hidden}
        self.layer.set_style(by_uid, hidden, s.selected)

    # ------------------------------------------------------------------ changes
    def _on_object(self, uid: str, what: str) -> None:
        s = self.session
        if s is None:
            return
        if what in ("added", "removed", "order"):
            self._sync_rows()
            if self.label_map is not None:
                if what == "removed":
                    window = self.label_map.remove(uid) if self.label_map.slot(uid) is not None else None
                elif what == "added" and uid in s.objects:
                    window = self.label_map.add(uid, self._crop(s.objects[uid]))
                else:
                    window = self.label_map.reorder([o.uid for o in s.ordered()])
                if window is not None:
                    self.layer.invalidate(window)
            self._restyle()
            return
        obj = s.objects.get(uid)
        if obj is None:
            return
        if what == "mask":
            if uid == s.selected:
                self._dirty.add(uid)  # drawn by the mask layer meanwhile
            elif self.label_map is not None:
                self._update_map(uid, obj)
        elif what == "hidden" and self.label_map is not None:
            window = self.label_map.set_hidden(uid, obj.hidden)  # clicks go through a hidden object
            if window is not None:
                self.layer.invalidate(window)
        number = next((i for i, o in enumerate(s.ordered(), start=1) if o.uid == uid), 0)
        self.panel.update_row(self._row(obj, number, self._colours()))
        if what in ("category", "hidden"):
            self._restyle()

    def _update_map(self, uid: str, obj) -> None:
        window = self.label_map.update(uid, self._crop(obj))
        if window is not None:
            self.layer.invalidate(window)

    def _sync_rows(self) -> None:
        self.panel.update_rows(self._rows())

    def _on_aspect(self, aspect: str) -> None:
        s = self.session
        if s is None:
            return
        if aspect == "selection":
            before, self._selected = self._selected, s.selected
            if before in self._dirty and before in s.objects and self.label_map is not None:
                self._dirty.discard(before)
                self._update_map(before, s.objects[before])
            self.panel.set_current(s.selected)
            self._restyle()
        elif aspect in ("image", "restored"):  # read again, or put back: every object may differ
            self._rebuild()

    def on_classes(self) -> None:
        self.window.candidates_panel.set_classes(self.c.workspace.categories)
        if self.session is not None:
            self._sync_rows()
            self._restyle()

    # ------------------------------------------------------------------ requests
    def on_panel_current(self, uid: str | None) -> None:
        s = self.session
        if s is not None and uid != s.selected:
            s.select(uid)

    def on_hidden(self, uid: str, hidden: bool) -> None:
        if self.session is not None:
            self.session.set_hidden(uid, hidden)

    def selected_uids(self) -> list[str]:
        """The objects the panel has selected, else the selected object (none: [])."""
        uids = [u for u in self.panel.selected_uids() if self.session is not None and u in self.session.objects]
        if not uids and self.session is not None and self.session.selected is not None:
            uids = [self.session.selected]
        return uids

    def step(self, delta: int) -> None:
        """Select the next (+1) or previous (-1) object, top of the drawing order first."""
        s = self.session
        if s is None or not s.objects:
            return
        order = [o.uid for o in reversed(s.ordered())]
        i = order.index(s.selected) if s.selected in order else (-1 if delta > 0 else 0)
        s.select(order[(i + delta) % len(order)])

    def review_next(self) -> None:
        """Show the object the project's review queue ranks first (objects, not only images: the
        highest review need not accepted), on its image; the selected one is passed over."""
        ws = self.c.workspace
        ws.drain()  # the needs written so far
        current = self.session
        for image_id, uid, _need in ws._read(lambda: ws.project.review_queue(50), []):
            if current is not None and image_id == current.image_id and uid == current.selected:
                continue
            row = ws.row_of_id.get(image_id)
            if row is None:
                continue
            ws.set_index(row)
            session = ws.current
            if session is not None and uid in session.objects:
                session.select(uid)
                return
        self.c.show_message("No object needs a review: every object is accepted.", "info")

    def select_at(self, x: float, y: float) -> None:
        """Select the top-most object under (x, y) image pixels (none there: deselect)."""
        s = self.session
        if s is None:
            return
        obj = s.selected_object
        col, row = int(x), int(y)
        if obj is not None and obj.mask is not None and 0 <= row < obj.mask.shape[0] and 0 <= col < obj.mask.shape[1] \
                and obj.mask[row, col]:
            return  # the selected object is drawn on top
        hit = None if self.label_map is None else self.label_map.object_at(col, row)
        s.select(hit)

    def class_key(self, k: int) -> None:
        """Digit key ``k`` (1-9): the class list's k-th class for the selected object(s)."""
        cats = self.c.workspace.categories
        if k > len(cats):
            self.c.show_message(f"The class list has {len(cats)} class{'es' if len(cats) != 1 else ''}: "
                                f"there is no class {k} (Objects > Class list… to add some).", "warning")
            return
        self.c.edits.change_category(cats[k - 1].name, self.selected_uids())

    def pick_class(self, uids: list[str]) -> None:
        from gui.window.dialogs.class_picker import ClassPicker

        s = self.session
        uids = [u for u in uids if s is not None and u in s.objects]
        if not uids:
            self.c.show_message("Select an object first.", "warning")
            return
        name = ClassPicker.pick(self.window, self.c.workspace.categories, s.objects[uids[0]].record.category)
        if name is not None:
            self.c.edits.change_category(name, uids)

    def edit_classes(self) -> None:
        from gui.window.dialogs.classes_dialog import ClassesDialog

        ws = self.c.workspace
        dialog = ClassesDialog(ws.categories, self.window)
        if dialog.exec() != ClassesDialog.DialogCode.Accepted:
            return
        changes = dialog.changes()
        added, renames, colours = changes.added, changes.renames, changes.colours

        def apply(project) -> None:
            for old, new in renames:
                project.rename_category(old, new)
            if added:
                project.set_classes(added)
            for name, colour in colours:
                project.set_category_color(name, colour)

        ws.write(apply, wait=True)
        ws.classes_changed.emit()
        for session in ws.made_sessions():  # a renamed class: the objects' records follow
            for obj in session.objects.values():
                for old, new in renames:
                    if obj.record.category == old:
                        obj.record.category = new


__all__ = ["ObjectsView"]
