"""Encode the image on screen before the user asks or clicks.

The vision encoders are the part of a question that does not depend on it: on a 2-core CPU
with the base models, EfficientSAM, BLIP ITM and BLIP caption take ~5.5 s of a ~12 s chain. A
user looks at the image and types for longer than that, so the worker encodes it as soon as
it is shown (EfficientSAM first: the first click is then served from the cache too).

The job is background work (:class:`~gui.requests.EncodeImage`): it shows in the status bar
and Cancel stops it, it gives way to any request about another image (the worker checks
between encoder blocks), and its errors are left for the user's own request to report.
Engine > "Encode images when shown" turns it off (``enabled``).
"""

from __future__ import annotations

from PySide6 import QtCore

from .requests import Cancelled, EncodeImage, Failed, Finished, ImageRef
from .session import ImageSession
from .engine_client import EngineClient


class ImagePrefetcher(QtCore.QObject):
    def __init__(self, client: EngineClient, enabled: bool = True) -> None:
        super().__init__()
        self.client = client
        self.enabled = enabled
        self.models_ready = False  # set by the controller once LoadModels has replied
        self.sent = 0
        self._running: dict[str, int] = {}  # image_id -> request_id of its job, until it ends
        for signal in (client.finished, client.failed, client.cancelled):
            signal.connect(self._on_end)

    def image_shown(self, session: ImageSession | None) -> None:
        """Encode ``session``'s image unless it is not read yet, the models are not loaded, or a
        job for it is already on its way (the pipeline skips encoders it has cached)."""
        if not (self.enabled and self.models_ready) or session is None or session.image is None:
            return
        image = session.image
        if image.image_id in self._running:
            return
        ref = ImageRef(session.key, image.rgb, image.image_id)
        request = self.client.submit(EncodeImage(image=ref))
        self._running[image.image_id] = request.request_id
        self.sent += 1

    def _on_end(self, message: Finished | Failed | Cancelled) -> None:
        request = message.request
        if isinstance(request, EncodeImage) and self._running.get(request.image.image_id) == request.request_id:
            del self._running[request.image.image_id]
