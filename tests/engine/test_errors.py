"""``engine.errors.describe_error``: one wording of an error for the app's message area and the
command line."""

from __future__ import annotations

from engine.commands import cli
from engine.errors import ExportError, ModelMissingError, describe_error


class OutOfMemoryError(RuntimeError):
    """Named as torch's (torch.cuda.OutOfMemoryError), which describe_error knows by its name."""


def test_describe_error_says_what_to_do():
    kind, message, _ = describe_error(MemoryError())
    assert kind == "ResourceError" and "smaller preset" in message
    assert describe_error(OutOfMemoryError("CUDA out of memory"))[:2] == ("ResourceError", message)
    kind, message, _ = describe_error(RuntimeError("boom"))
    assert kind == "RuntimeError" and "boom" in message and "work is kept" in message
    assert describe_error(ModelMissingError("no SAM", role="sam")) == ("ModelMissingError", "no SAM", "sam")
    assert describe_error(ExportError("no folder")) == ("ExportError", "no folder", None)


def test_the_command_line_says_it_as_the_app_does(tmp_path, monkeypatch, capsys):
    import engine.export

    from engine.project import Project

    Project.create(tmp_path / "p.qmask").close()
    argv = ["export", str(tmp_path / "p.qmask"), "--format", "coco", "--out", str(tmp_path / "a.json")]
    for err in (MemoryError(), OutOfMemoryError("CUDA out of memory"), RuntimeError("boom")):
        def export_project(*_a, err=err, **_k):
            raise err

        monkeypatch.setattr(engine.export, "export_project", export_project)
        assert cli.main(argv) == 1
        printed = capsys.readouterr().err
        assert printed.rstrip().endswith(f"qmask export: error: {describe_error(err)[1]}"), printed
        # a trace only for what is neither ours nor memory: that is what a report needs
        assert ("Traceback" in printed) == (type(err) is RuntimeError), printed
