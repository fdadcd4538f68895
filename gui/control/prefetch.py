"""Encode the image on screen before the user asks or clicks.

The vision encoders are the part of a question that does not depend on it: on a 2-core CPU
with the base models, EfficientSAM, BLIP ITM and BLIP caption take ~5.5 s of a ~12 s chain. A
user looks at the image and types for longer than that, so the worker encodes it as soon as
it is shown (EfficientSAM first: the first click is then served from the cache too).

Then, once the shown image is encoded and the engine has been idle for a moment, the image
after it in the list is read and encoded too (:class:`~gui.engine_thread.requests.EncodeNext`), so ``D``
finds its encoders cached. Only that one image is read ahead; its pixels go to the engine's
image cache, not to a session.

Both are background work: they show in the status bar and Cancel stops them, they give way to
any request the user makes (a question, Re-run answer, another image) and to a click (the worker
checks between encoder blocks), they never grey out an action, and their errors are left for the
user's own request to report. A job that gave way is sent again when the engine is idle again. Engine > "Encode images when shown" turns both off (``enabled``).
"""

from __future__ import annotations

from PySide6 import QtCore

from gui.engine_thread.engine_client import EngineClient
from gui.engine_thread.requests import Ask, Cancelled, EncodeImage, EncodeNext, Failed, Finished, ImageRef
from gui.workspace.session import ImageSession
from gui.workspace.workspace import Workspace

IDLE_MS = 400  # the engine idle this long (no request, no edit) before the next image is read
AHEAD_KEPT = 8  # images remembered as encoded ahead (the engine's image cache holds 8)


class ImagePrefetcher(QtCore.QObject):
    def __init__(self, client: EngineClient, workspace: Workspace | None = None, enabled: bool = True) -> None:
        super().__init__()
        self.client = client
        self.workspace = workspace  # the list order, for the next image (None: the shown one only)
        self.enabled = enabled
        self.ahead = True  # also the image after the shown one (needs ``workspace``)
        self.models_ready = False  # set by the controller once LoadModels has replied
        self.sent = 0
        self.sent_ahead = 0  # EncodeNext requests sent
        self._running: dict[str, int] = {}  # image_id -> request_id of its job, until it ends
        self._encoded: set[str] = set()  # image ids whose encode job finished
        self._gave_way: set[str] = set()  # image ids whose encode job gave way to the user's work
        self._ahead: tuple[str, int] | None = None  # (key, request_id) of the EncodeNext in flight
        self._ahead_done: list[str] = []  # keys encoded ahead (or failed, or cancelled by the user)
        self._idle = QtCore.QTimer(self)
        self._idle.setSingleShot(True)
        self._idle.setInterval(IDLE_MS)
        self._idle.timeout.connect(self.encode_next)
        for signal in (client.finished, client.failed, client.cancelled):
            signal.connect(self._on_end)
        client.busy_changed.connect(self._soon)
        if workspace is not None:
            workspace.prompts_changed.connect(self._soon)  # an edit restarts the wait for quiet

    def image_shown(self, session: ImageSession | None) -> bool:
        """Encode ``session``'s image unless it is not read yet, the models are not loaded, or a
        job for it is already on its way (the pipeline skips encoders it has cached). True when sent."""
        if not (self.enabled and self.models_ready) or session is None or session.image is None:
            return False
        image = session.image
        if image.image_id in self._running:
            return False
        ref = ImageRef(session.key, image.rgb, image.image_id)
        request = self.client.submit(EncodeImage(image=ref))
        self._running[image.image_id] = request.request_id
        self.sent += 1
        return True

    def _on_end(self, message: Finished | Failed | Cancelled) -> None:
        request = message.request
        if isinstance(request, (EncodeImage, Ask)) and isinstance(message, Finished):
            self._encoded.add(request.image.image_id)  # (a question encodes its image too)
        if isinstance(request, EncodeImage) and self._running.get(request.image.image_id) == request.request_id:
            del self._running[request.image.image_id]
            if isinstance(message, Cancelled) and message.superseded:
                self._gave_way.add(request.image.image_id)  # sent again once the engine is idle
        elif isinstance(request, EncodeNext) and self._ahead == (request.key, request.request_id):
            self._ahead = None
            gave_way = isinstance(message, Cancelled) and message.superseded
            if not gave_way:  # done, failed (the user's own request will say why) or cancelled by the user
                self._ahead_done = [k for k in self._ahead_done if k != request.key][-(AHEAD_KEPT - 1):] + [request.key]
        self._soon()

    def _soon(self, *_args) -> None:
        """(Re)start the wait for an idle engine before reading the next image."""
        if self.enabled and self.workspace is not None:
            self._idle.start()

    def next_image(self) -> str | None:
        """The path of the image to encode ahead now (also its key), or None: the shown image is read and
        encoded, the engine is idle, and the image after it in the list is not encoded yet."""
        w = self.workspace
        shown = None if w is None else w.current
        if not (self.enabled and self.ahead and self.models_ready and self.client.thread.isRunning()) \
                or shown is None or shown.image is None \
                or self.client.busy or self._ahead is not None or shown.image.image_id not in self._encoded:
            return None
        index = w.index + 1
        if index >= len(w.ids):
            return None
        path = w.paths[index]
        after = w.session_for(w.ids[index])
        if str(path) in self._ahead_done or not path.is_file() or (
                after is not None and after.image is not None and after.image.image_id in self._encoded):
            return None
        return str(path)

    def encode_next(self) -> bool:
        """The engine is idle: encode the shown image again if its job gave way to the user's work,
        else send the next image's :class:`EncodeNext` if :meth:`next_image` says so; True when sent."""
        shown = None if self.workspace is None else self.workspace.current
        if shown is not None and shown.image is not None and shown.image.image_id in self._gave_way \
                and not self.client.busy:
            self._gave_way.discard(shown.image.image_id)
            if shown.image.image_id not in self._encoded and self.image_shown(shown):
                return True
        path = self.next_image()
        if path is None:
            return False
        request = self.client.submit(EncodeNext(key=path, path=path))
        self._ahead = (path, request.request_id)
        self.sent_ahead += 1
        return True
