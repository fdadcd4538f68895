"""The models dialog's Cancel stops a download inside the file (a local, slow HTTP server on
127.0.0.1); the next download resumes it to the same bytes."""

from __future__ import annotations

import io
import shutil
import time

import pytest
import torch

from gui.window.dialogs.models_dialog import ModelsDialog
from support.gui import WAIT_MS
from support.local_http import LocalHTTPServer, QuietHandler
from support.gui import no_thread_left_holding, qt_garbage_on_gui_thread  # noqa: F401 - autouse


class _SlowServer(LocalHTTPServer):
    """Serves one file with Range support, ``piece`` bytes every ``pause_s`` seconds."""

    def __init__(self, path: str, body: bytes, piece: int = 128 * 1024, pause_s: float = 0.02):
        self.body, self.piece, self.pause_s = body, piece, pause_s
        self.sent = 0  # body bytes written, all requests together
        self.ranges: list[str | None] = []
        server = self

        class Handler(QuietHandler):
            def do_GET(self):
                if self.path != path:
                    self.send_error(404)
                    return
                rng = self.headers.get("Range")
                server.ranges.append(rng)
                start = int(rng.split("=")[1].split("-")[0]) if rng else 0
                part = server.body[start:]
                self.send_response(206 if rng else 200)
                if rng:
                    self.send_header("Content-Range", f"bytes {start}-{len(server.body) - 1}/{len(server.body)}")
                self.send_header("Content-Length", str(len(part)))
                self.end_headers()
                try:
                    for i in range(0, len(part), server.piece):
                        self.wfile.write(part[i:i + server.piece])
                        server.sent += len(part[i:i + server.piece])
                        if server.pause_s:
                            time.sleep(server.pause_s)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client cancelled

        super().__init__(Handler)


@pytest.fixture
def models_without_sam(tmp_path, tiny_models_dir):
    """A models folder with random itm/caption/qa (left alone by downloads) and no EfficientSAM."""
    folder = tmp_path / "models"
    for role in ("itm", "caption", "qa"):
        shutil.copytree(tiny_models_dir / role, folder / role)
    return folder


def test_cancel_stops_inside_the_file_and_the_next_download_resumes(qtbot, models_without_sam):
    buf = io.BytesIO()
    torch.save({"model": {"w": torch.arange(1_500_000, dtype=torch.float32)}}, buf)  # ~6 MiB
    ckpt = buf.getvalue()
    dialog = ModelsDialog("base", "vitt", str(models_without_sam))
    qtbot.addWidget(dialog)
    dialog.show()
    assert dialog.missing == ["efficient_sam"] and dialog.download_button.isEnabled()
    part = models_without_sam / "efficient_sam" / "efficient_sam_vitt.pt.part"
    with _SlowServer("/weights/efficient_sam_vitt.pt", ckpt) as srv:
        dialog.download_options = {"base_url": srv.base}
        dialog.start_download()
        assert dialog.task is not None and dialog.cancel_button.isVisible()
        qtbot.waitUntil(lambda: part.is_file() and part.stat().st_size > 0, timeout=WAIT_MS)
        dialog.cancel_button.click()
        # (waits on the dialog, not on the task's signals: the dialog deletes the task when it ends)
        qtbot.waitUntil(lambda: dialog.task is None, timeout=WAIT_MS)
        assert "cancelled" in dialog.progress_label.text().lower()
        kept = part.stat().st_size
        assert 0 < kept < len(ckpt)  # stopped inside the file ...
        assert srv.sent < len(ckpt)  # ... and stopped fetching it
        assert part.read_bytes() == ckpt[:kept]
        assert dialog.task is None and dialog.missing == ["efficient_sam"] and dialog.download_button.isEnabled()

        srv.pause_s = 0.0
        dialog.start_download()
        qtbot.waitUntil(lambda: dialog.task is None, timeout=WAIT_MS)
    assert srv.ranges[-1] == f"bytes={kept}-"  # resumed, not restarted
    assert (models_without_sam / "efficient_sam" / "efficient_sam_vitt.pt").read_bytes() == ckpt
    assert not part.exists()
    assert dialog.missing == [] and dialog.continue_button.isEnabled()
    dialog.close()
