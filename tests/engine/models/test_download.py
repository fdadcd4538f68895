"""Model downloads against a local HTTP server on 127.0.0.1 (never the internet)."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import pytest
import torch

from engine.models.download import (DownloadError, choose_weight_patterns, download_file, download_models,
                             fetch_efficient_sam, fetch_hf_model, select_repo_files)
from engine.errors import CancelledError, CheckpointError, InputError
from engine.models.manager import SOURCE_NAME, locate
from support.local_http import LocalHTTPServer, QuietHandler


class _Server(LocalHTTPServer):
    """Serves ``files`` (url path -> bytes) with Range support; knobs to misbehave."""

    def __init__(self, files: dict[str, bytes]):
        self.files = files
        self.requests: list[dict[str, str | None]] = []
        self.cut_after: int | None = None  # close the connection after this many body bytes, once
        self.ignore_range = False
        server = self

        class Handler(QuietHandler):
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

        super().__init__(Handler)


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
    """Stands in for huggingface_hub: records the files asked for and writes them chunk by chunk,
    reporting each chunk to the ``tqdm_class`` bar as huggingface_hub does, resuming from
    ``<file>.incomplete`` as it does."""

    CHUNK = 100

    def __init__(self, files, sizes=None):
        self.files = files
        self.sizes = sizes or {}
        self.calls = []

    def list_repo_files(self, repo):
        return list(self.files)

    def content(self, repo, filename):
        if filename == "config.json":
            return json.dumps({"model_type": "t5" if "unifiedqa" in repo else "blip"}).encode()
        n = self.sizes.get(filename, 8)
        return bytes((i * 31 + len(filename)) % 256 for i in range(n))

    def hf_hub_download(self, repo, filename, *, local_dir=None, cache_dir=None, tqdm_class=None):
        self.calls.append((repo, filename))
        folder = Path(local_dir) if local_dir is not None else Path(cache_dir or "/nonexistent") / "snap"
        target = folder / filename
        if target.is_file():
            return str(target)
        target.parent.mkdir(parents=True, exist_ok=True)
        data = self.content(repo, filename)
        partial = target.with_name(target.name + ".incomplete")
        have = partial.stat().st_size if partial.is_file() else 0
        bar = tqdm_class(total=len(data), initial=have, desc=filename) if tqdm_class is not None else None
        with open(partial, "ab") as out:
            while have < len(data):
                chunk = data[have:have + self.CHUNK]
                out.write(chunk)
                out.flush()
                have += len(chunk)
                if bar is not None:
                    bar.update(len(chunk))
        if bar is not None:
            bar.close()
        partial.replace(target)
        return str(target)


def test_fetch_hf_model_prefers_safetensors_and_marks_source(tmp_path):
    hub = _FakeHub(["config.json", "model.safetensors", "pytorch_model.bin", "tf_model.h5", "vocab.txt",
                    "onnx/model.safetensors", "flax_model.msgpack"])
    folder = fetch_hf_model("Salesforce/blip-itm-large-coco", local_dir=tmp_path / "itm", hub=hub, progress=False)
    assert folder == tmp_path / "itm"
    assert [f for _, f in hub.calls] == ["config.json", "model.safetensors", "vocab.txt"]
    assert json.loads((tmp_path / "itm" / SOURCE_NAME).read_text())["repo_id"] == "Salesforce/blip-itm-large-coco"


def test_download_models_to_dir_fetches_only_missing(tmp_path):
    ckpt = _sam_checkpoint_bytes()
    hub = _FakeHub(["config.json", "model.safetensors"])
    to = tmp_path / "models"
    with _Server({"/weights/efficient_sam_vitt.pt": ckpt}) as srv:
        first = download_models("large", "vitt", to=to, base_url=srv.base, hub=hub, progress=False, say=lambda m: None)
        assert [o.action for o in first] == ["downloaded"] * 4
        repos = list(dict.fromkeys(c[0] for c in hub.calls))
        assert repos == ["Salesforce/blip-itm-large-coco", "Salesforce/blip-image-captioning-large",
                         "allenai/unifiedqa-v2-t5-large-1363200"]
        n_calls = len(hub.calls)
        second = download_models("large", "vitt", to=to, base_url=srv.base, hub=hub, progress=False, say=lambda m: None)
        assert [o.action for o in second] == ["present"] * 4
        assert len(hub.calls) == n_calls
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


def test_select_repo_files_top_level_only():
    files = ["config.json", "model.safetensors", "pytorch_model.bin", "tf_model.h5", "spiece.model", "README.md",
             "onnx/model.safetensors", "onnx/config.json", "vocab.txt", ".gitattributes"]
    assert select_repo_files(files) == ["config.json", "model.safetensors", "spiece.model", "vocab.txt"]
    assert select_repo_files(["config.json", "pytorch_model.bin"]) == ["config.json", "pytorch_model.bin"]


def test_cancel_mid_file_keeps_part_and_resume_completes(tmp_path):
    data = _payload()  # a bit over 3 chunks
    dest = tmp_path / "model.pt"
    chunks: list[int] = []
    with _Server({"/model.pt": data}) as srv:
        with pytest.raises(CancelledError, match="resumes"):
            download_file(srv.base + "/model.pt", dest, progress=False, on_chunk=chunks.append,
                          cancel=lambda: len(chunks) >= 1)
        part = tmp_path / "model.pt.part"
        assert part.read_bytes() == data[:chunks[0]] and 0 < chunks[0] < len(data)
        assert not dest.exists()
        # Cancelled before it starts: no request at all.
        n = len(srv.requests)
        with pytest.raises(CancelledError):
            download_file(srv.base + "/model.pt", dest, progress=False, cancel=lambda: True)
        assert len(srv.requests) == n and part.stat().st_size == chunks[0]
        # The next run resumes from the .part and completes with identical bytes.
        download_file(srv.base + "/model.pt", dest, progress=False, cancel=lambda: False)
    assert dest.read_bytes() == data
    assert srv.requests[-1]["range"] == f"bytes={chunks[0]}-"
    assert not part.exists()


def test_cancel_efficient_sam_mid_file_then_resume(tmp_path):
    buf = io.BytesIO()
    torch.save({"model": {"w": torch.arange(800_000, dtype=torch.float32)}}, buf)  # ~3 MiB: several chunks
    ckpt = buf.getvalue()

    def cancel():
        part = tmp_path / "efficient_sam_vitt.pt.part"
        return part.is_file() and part.stat().st_size > 0

    with _Server({"/weights/efficient_sam_vitt.pt": ckpt}) as srv:
        with pytest.raises(CancelledError):
            fetch_efficient_sam("vitt", tmp_path, base_url=srv.base, progress=False, cancel=cancel)
        part = tmp_path / "efficient_sam_vitt.pt.part"
        assert 0 < part.stat().st_size < len(ckpt) and not (tmp_path / "efficient_sam_vitt.pt").exists()
        out = fetch_efficient_sam("vitt", tmp_path, base_url=srv.base, progress=False, cancel=lambda: False)
    assert out.read_bytes() == ckpt and not part.exists()
    assert srv.requests[-1]["range"] is not None


def test_cancel_hf_download_inside_a_file_and_between_files(tmp_path):
    hub = _FakeHub(["config.json", "model.safetensors", "vocab.txt"], sizes={"model.safetensors": 1000})
    folder = tmp_path / "cap"

    def cancel():  # true in the middle of the weights (10 chunks of 100 bytes)
        incomplete = folder / "model.safetensors.incomplete"
        return incomplete.is_file() and incomplete.stat().st_size >= 300

    with pytest.raises(CancelledError):
        fetch_hf_model("Salesforce/blip-image-captioning-large", local_dir=folder, hub=hub, progress=False,
                       cancel=cancel)
    incomplete = folder / "model.safetensors.incomplete"
    assert incomplete.stat().st_size == 300  # stopped inside the file, partial bytes kept
    assert not (folder / "model.safetensors").exists() and not (folder / "vocab.txt").exists()
    assert not (folder / SOURCE_NAME).exists()
    # Cancel between files: config.json was already there, nothing else is asked for.
    calls = len(hub.calls)
    with pytest.raises(CancelledError):
        fetch_hf_model("Salesforce/blip-image-captioning-large", local_dir=folder, hub=hub, cancel=lambda: True)
    assert len(hub.calls) == calls
    # Resume: completes with the same bytes as an uninterrupted download.
    fetch_hf_model("Salesforce/blip-image-captioning-large", local_dir=folder, hub=hub, progress=False,
                   cancel=lambda: False)
    assert (folder / "model.safetensors").read_bytes() == hub.content("x", "model.safetensors")
    assert (folder / "vocab.txt").is_file() and (folder / SOURCE_NAME).is_file()


def test_download_models_cancel_before_a_role(tmp_path):
    hub = _FakeHub(["config.json", "model.safetensors"])
    with pytest.raises(CancelledError):
        download_models("base", "vitt", to=tmp_path / "m", hub=hub, progress=False, say=lambda m: None,
                        cancel=lambda: True)
    assert hub.calls == []


def test_download_error_lives_in_engine_errors():
    from engine import errors
    from engine.models.download import DownloadError as FromDownload

    assert FromDownload is errors.DownloadError and issubclass(FromDownload, errors.QMaskError)
