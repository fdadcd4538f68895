"""Model downloads against a local HTTP server on 127.0.0.1 (never the internet)."""

from __future__ import annotations

import io
import json
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import torch

from engine.download import (DownloadError, choose_weight_patterns, download_file, download_models,
                             fetch_efficient_sam, fetch_hf_model)
from engine.errors import CheckpointError, InputError
from engine.models import SOURCE_NAME, locate


class _Server:
    """Serves ``files`` (url path -> bytes) with Range support; knobs to misbehave."""

    def __init__(self, files: dict[str, bytes]):
        self.files = files
        self.requests: list[dict[str, str | None]] = []
        self.cut_after: int | None = None  # close the connection after this many body bytes, once
        self.ignore_range = False
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output clean
                pass

            def do_GET(self):
                server.requests.append({"path": self.path, "range": self.headers.get("Range")})
                body = server.files.get(self.path)
                if body is None:
                    self.send_error(404)
                    return
                start = 0
                rng = self.headers.get("Range")
                if rng and not server.ignore_range:
                    start = int(rng.split("=")[1].split("-")[0])
                    if start >= len(body):
                        self.send_response(416)
                        self.send_header("Content-Range", f"bytes */{len(body)}")
                        self.end_headers()
                        return
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
                else:
                    self.send_response(200)
                part = body[start:]
                self.send_header("Content-Length", str(len(part)))
                self.end_headers()
                if server.cut_after is not None:
                    cut, server.cut_after = server.cut_after, None
                    self.wfile.write(part[:cut])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                self.wfile.write(part)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)


def _payload(n: int = 3 * (1 << 20) + 12345) -> bytes:
    return bytes((i * 7919) % 251 for i in range(n))


def test_download_whole_file(tmp_path):
    data = _payload(100_000)
    with _Server({"/f.bin": data}) as srv:
        out = download_file(srv.base + "/f.bin", tmp_path / "f.bin", progress=False)
    assert out.read_bytes() == data
    assert not (tmp_path / "f.bin.part").exists()


def test_interrupted_download_resumes_with_range(tmp_path):
    data = _payload()
    dest = tmp_path / "model.pt"
    with _Server({"/model.pt": data}) as srv:
        srv.cut_after = 1_500_000
        with pytest.raises(DownloadError, match="run the command again"):
            download_file(srv.base + "/model.pt", dest, progress=False)
        part = tmp_path / "model.pt.part"
        assert part.is_file() and 0 < part.stat().st_size < len(data)
        assert not dest.exists()  # never a half file under the final name
        have = part.stat().st_size
        download_file(srv.base + "/model.pt", dest, progress=False)
    assert dest.read_bytes() == data
    assert srv.requests[-1]["range"] == f"bytes={have}-"
    assert not part.exists()


def test_resume_from_existing_part_file(tmp_path):
    data = _payload(200_000)
    (tmp_path / "w.pt.part").write_bytes(data[:77_777])
    with _Server({"/w.pt": data}) as srv:
        download_file(srv.base + "/w.pt", tmp_path / "w.pt", progress=False)
    assert srv.requests == [{"path": "/w.pt", "range": "bytes=77777-"}]
    assert (tmp_path / "w.pt").read_bytes() == data


def test_server_ignoring_range_restarts_cleanly(tmp_path):
    data = _payload(150_000)
    (tmp_path / "w.pt.part").write_bytes(b"x" * 5000)  # stale junk must not be kept
    with _Server({"/w.pt": data}) as srv:
        srv.ignore_range = True
        download_file(srv.base + "/w.pt", tmp_path / "w.pt", progress=False)
    assert (tmp_path / "w.pt").read_bytes() == data


def test_part_longer_than_file_starts_over(tmp_path):
    data = _payload(10_000)
    (tmp_path / "w.pt.part").write_bytes(b"y" * 20_000)
    with _Server({"/w.pt": data}) as srv:
        download_file(srv.base + "/w.pt", tmp_path / "w.pt", progress=False)
    assert (tmp_path / "w.pt").read_bytes() == data


def test_http_error_and_bad_url(tmp_path):
    with _Server({}) as srv:
        with pytest.raises(DownloadError, match="HTTP 404"):
            download_file(srv.base + "/nope.pt", tmp_path / "nope.pt", progress=False)
    assert not (tmp_path / "nope.pt").exists()
    with pytest.raises(InputError):
        download_file("file:///etc/passwd", tmp_path / "x", progress=False)
    with pytest.raises(DownloadError, match="Could not reach"):
        download_file("http://127.0.0.1:9/x.pt", tmp_path / "x.pt", progress=False, timeout=2)


def _sam_checkpoint_bytes() -> bytes:
    buf = io.BytesIO()
    torch.save({"model": {"w": torch.arange(6.0).reshape(2, 3)}}, buf)
    return buf.getvalue()


def test_fetch_efficient_sam_vitt_and_vits_zip(tmp_path):
    ckpt = _sam_checkpoint_bytes()
    zbuf = io.BytesIO()
    with zipfile.ZipFile(zbuf, "w") as zf:
        zf.writestr("efficient_sam_vits.pt", ckpt)
    files = {"/weights/efficient_sam_vitt.pt": ckpt, "/weights/efficient_sam_vits.pt.zip": zbuf.getvalue()}
    with _Server(files) as srv:
        t = fetch_efficient_sam("vitt", tmp_path, base_url=srv.base + "/", progress=False)
        s = fetch_efficient_sam("vits", tmp_path, base_url=srv.base, progress=False)
        n_requests = len(srv.requests)
        # Already there: no second request.
        fetch_efficient_sam("vitt", tmp_path, base_url=srv.base, progress=False)
        assert len(srv.requests) == n_requests
    assert t == tmp_path / "efficient_sam_vitt.pt" and t.read_bytes() == ckpt
    assert s == tmp_path / "efficient_sam_vits.pt" and s.read_bytes() == ckpt
    assert not (tmp_path / "efficient_sam_vits.pt.zip").exists()
    assert json.loads((tmp_path / SOURCE_NAME).read_text())["repo_id"] == "yformer/EfficientSAM"


def test_fetch_efficient_sam_rejects_non_checkpoint(tmp_path):
    with _Server({"/weights/efficient_sam_vitt.pt": b"<html>not found</html>",
                  "/weights/efficient_sam_vits.pt.zip": b"PK-not-a-zip"}) as srv:
        with pytest.raises(CheckpointError, match="download it again"):
            fetch_efficient_sam("vitt", tmp_path, base_url=srv.base, progress=False)
        with pytest.raises(CheckpointError, match="zip"):
            fetch_efficient_sam("vits", tmp_path, base_url=srv.base, progress=False)
    # Nothing bad is left to be mistaken for a model next time.
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_choose_weight_patterns():
    assert choose_weight_patterns(["config.json", "model.safetensors", "pytorch_model.bin"]) == ["*.safetensors"]
    assert choose_weight_patterns(["config.json", "pytorch_model.bin", "tf_model.h5"]) == ["*.bin"]
    with pytest.raises(DownloadError):
        choose_weight_patterns(["config.json", "tf_model.h5", "onnx/model.safetensors"])


class _FakeHub:
    """Stands in for huggingface_hub: records calls and writes a minimal folder."""

    def __init__(self, files):
        self.files = files
        self.calls = []

    def list_repo_files(self, repo):
        return list(self.files)

    def snapshot_download(self, repo, **kwargs):
        self.calls.append((repo, kwargs))
        folder = Path(kwargs["local_dir"])
        folder.mkdir(parents=True, exist_ok=True)
        model_type = "t5" if "unifiedqa" in repo else "blip"
        (folder / "config.json").write_text(json.dumps({"model_type": model_type}))
        (folder / "model.safetensors").write_bytes(b"\0" * 8)
        return str(folder)


def test_fetch_hf_model_prefers_safetensors_and_marks_source(tmp_path):
    hub = _FakeHub(["config.json", "model.safetensors", "pytorch_model.bin", "tf_model.h5", "vocab.txt"])
    fetch_hf_model("Salesforce/blip-itm-large-coco", local_dir=tmp_path / "itm", hub=hub)
    (_repo, kwargs), = hub.calls
    assert "*.safetensors" in kwargs["allow_patterns"] and "*.bin" not in kwargs["allow_patterns"]
    assert not any("h5" in p or "msgpack" in p for p in kwargs["allow_patterns"])
    assert json.loads((tmp_path / "itm" / SOURCE_NAME).read_text())["repo_id"] == "Salesforce/blip-itm-large-coco"


def test_download_models_to_dir_fetches_only_missing(tmp_path):
    ckpt = _sam_checkpoint_bytes()
    hub = _FakeHub(["config.json", "model.safetensors"])
    to = tmp_path / "models"
    with _Server({"/weights/efficient_sam_vitt.pt": ckpt}) as srv:
        first = download_models("large", "vitt", to=to, base_url=srv.base, hub=hub, progress=False, say=lambda m: None)
        assert [o.action for o in first] == ["downloaded"] * 4
        assert [c[0] for c in hub.calls] == ["Salesforce/blip-itm-large-coco", "Salesforce/blip-image-captioning-large",
                                             "allenai/unifiedqa-v2-t5-large-1363200"]
        second = download_models("large", "vitt", to=to, base_url=srv.base, hub=hub, progress=False, say=lambda m: None)
        assert [o.action for o in second] == ["present"] * 4
        assert len(hub.calls) == 3
        # Another preset's QA goes next to the first, not over it.
        download_models("base", "vitt", to=to, base_url=srv.base, hub=hub, progress=False, say=lambda m: None)
    assert (to / "qa").is_dir() and (to / "qa-base").is_dir()
    assert locate("qa", "large", models_dir=to, use_env=False).path == to / "qa"
    assert locate("qa", "base", models_dir=to, use_env=False).path == to / "qa-base"
    assert locate("efficient_sam", models_dir=to, use_env=False).model_id.startswith("yformer/EfficientSAM")


def test_download_models_never_overwrites_random_weights(tmp_path, tiny_models_dir):
    hub = _FakeHub(["config.json", "model.safetensors"])
    out = download_models("base", "vitt", to=tiny_models_dir, hub=hub, progress=False, say=lambda m: None)
    assert {o.action for o in out} == {"skipped-random"}
    assert hub.calls == []
