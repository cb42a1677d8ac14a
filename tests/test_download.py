"""trainers.data.download against a local HTTP server (127.0.0.1) serving small archives the
test builds from the synthetic data: resume after the server dies mid-file, MD5 checks, and the
layouts the loaders read. Never the internet."""
import hashlib
import json
import shutil
import tarfile
import threading
import zipfile
from dataclasses import replace
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import run_module, tiny_config
from trainers.data.registry import build_dataset
from trainers.data.download import SOURCES, download_dataset, fetch
from search_space.errors import UserInputError


class _Handler(SimpleHTTPRequestHandler):
    """Serves a folder with HTTP Range support. ``server.die_after`` (bytes): send that much of
    the next file, then stop the whole server, as a crash would."""

    def log_message(self, *args):
        pass

    def do_GET(self):
        path = Path(self.directory) / self.path.lstrip("/")
        if not path.is_file():
            self.send_error(404)
            return
        data = path.read_bytes()
        self.server.ranges.append(self.headers.get("Range"))
        start = 0
        if self.headers.get("Range"):
            start = int(self.headers["Range"].split("=")[1].split("-")[0])
            if start >= len(data):
                self.send_error(416)
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            self.send_response(200)
        self.send_header("Content-Length", str(len(data) - start))
        self.end_headers()
        cut = self.server.die_after
        if cut is not None:
            self.wfile.write(data[start:start + cut])
            self.wfile.flush()
            self.server.die_after = None
            threading.Thread(target=self.server.shutdown).start()
            self.close_connection = True
            self.connection.close()
            return
        self.wfile.write(data[start:])


def _serve(folder: Path, die_after=None, port: int = 0):
    server = ThreadingHTTPServer(("127.0.0.1", port), partial(_Handler, directory=str(folder)))
    server.die_after, server.ranges = die_after, []
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def _md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def test_download_resumes_after_the_server_dies_mid_file(tmp_path):
    served = tmp_path / "served"
    served.mkdir()
    blob = np.random.default_rng(0).integers(0, 256, 3_000_000, dtype=np.uint8).tobytes()
    (served / "big.bin").write_bytes(blob)
    md5 = hashlib.md5(blob).hexdigest()
    server = _serve(served, die_after=1_000_000)
    port = server.server_address[1]
    url = f"http://127.0.0.1:{port}/big.bin"
    dest = tmp_path / "dl" / "big.bin"
    with pytest.raises(UserInputError, match="run again to resume"):
        fetch(url, dest, md5, progress=False, timeout=10)
    part = dest.with_name("big.bin.part")
    assert part.stat().st_size == 1_000_000 and not dest.exists()
    server.shutdown()  # returns once the dying server has stopped
    server.server_close()
    server = _serve(served, port=port)  # the server is back
    try:
        fetch(url, dest, md5, progress=False, timeout=10)
        assert server.ranges == ["bytes=1000000-"]  # only the rest was asked for
    finally:
        server.shutdown()
        server.server_close()
    assert dest.read_bytes() == blob and not part.exists()
    assert dest.stat().st_mode & 0o777 != 0o600


def test_a_wrong_checksum_is_an_error_and_removes_the_part(tmp_path):
    (tmp_path / "f.bin").write_bytes(b"x" * 1000)
    server = _serve(tmp_path)
    try:
        with pytest.raises(UserInputError, match="does not match the published"):
            fetch(f"http://127.0.0.1:{server.server_address[1]}/f.bin", tmp_path / "out" / "f.bin",
                  "0" * 32, progress=False)
    finally:
        server.shutdown()
        server.server_close()
    assert not list((tmp_path / "out").iterdir())


def _zip(path: Path, root: Path, members: list[Path]):
    with zipfile.ZipFile(path, "w") as z:
        for m in members:
            z.write(m, m.relative_to(root).as_posix())


def test_coco_arrives_as_it_unzips_and_loads(coco_root, tmp_path):
    """Archives shaped like the official ones (annotations/…, val2017/…, train2017/… at their
    tops), served locally with their own MD5s; the result loads as COCO."""
    served = tmp_path / "served"
    stage = tmp_path / "stage"
    shutil.copytree(coco_root / "annotations", stage / "annotations")
    for s in ("train2017", "val2017"):
        shutil.copytree(coco_root / "images" / s, stage / s)
    served.mkdir()
    _zip(served / "annotations_trainval2017.zip", stage, sorted((stage / "annotations").iterdir()))
    for s in ("train2017", "val2017"):
        _zip(served / f"{s}.zip", stage, sorted((stage / s).iterdir()))
    det = coco_root / "person_detection_results" / "COCO_val2017_detections_AP_H_56_person.json"
    shutil.copy(det, served / det.name)
    sources = {"coco": [replace(r, md5=_md5(served / r.name) if r.md5 else None)
                        for r in SOURCES["coco"]]}
    server = _serve(served)
    out = tmp_path / "coco"
    try:
        done = download_dataset("coco", out, base_url=f"http://127.0.0.1:{server.server_address[1]}",
                                progress=False, sources=sources)
    finally:
        server.shutdown()
        server.server_close()
    assert len(done) == 4 and sum("MD5 ok" in d for d in done) == 3
    assert (out / "train2017").is_dir() and (out / "val2017").is_dir()
    assert (out / "person_detection_results" / det.name).read_bytes() == det.read_bytes()
    assert not (out / "downloads").exists()  # archives removed after unpacking
    ours = build_dataset(tiny_config("coco", out), "val")
    reference = build_dataset(tiny_config("coco", coco_root), "val")
    assert len(ours.records) == len(reference.records) > 0
    dt = build_dataset(tiny_config("coco", out), "val", use_gt_bbox=False)
    assert len(dt.records) > 0


@pytest.mark.e2e
def test_mpii_command_arranges_mmpose_archives_for_our_loader(mpii_root, tmp_path):
    served = tmp_path / "served"
    served.mkdir()
    with tarfile.open(served / "mpii_annotations.tar", "w") as t:
        for ours, theirs in (("train.json", "mpii_train.json"), ("valid.json", "mpii_val.json"),
                             ("gt_valid.mat", "mpii_gt_val.mat")):
            t.add(mpii_root / "annot" / ours, f"annotations/{theirs}")
    with tarfile.open(served / "mpii_human_pose_v1.tar.gz", "w:gz") as t:
        t.add(mpii_root / "images", "images")
    server = _serve(served)
    out = tmp_path / "mpii"
    try:
        r = run_module("-m", "trainers.data.download", "mpii", "--out", str(out), "--base-url",
                       f"http://127.0.0.1:{server.server_address[1]}", "--no-progress")
    finally:
        server.shutdown()
        server.server_close()
    assert r.returncode == 0, r.stderr[-2000:]
    assert json.loads(r.stdout.strip().splitlines()[-1]) == {"dataset": "mpii", "root": str(out)}
    assert sorted(p.name for p in (out / "annot").iterdir()) == ["gt_valid.mat", "train.json", "valid.json"]
    ours = build_dataset(tiny_config("mpii", out), "val")
    reference = build_dataset(tiny_config("mpii", mpii_root), "val")
    assert len(ours.records) == len(reference.records) > 0


def test_an_unsafe_archive_is_refused(tmp_path):
    from trainers.data.download import unpack

    bad = tmp_path / "bad.zip"
    with zipfile.ZipFile(bad, "w") as z:
        z.writestr("../escape.txt", "x")
    with pytest.raises(UserInputError, match="unsafe path"):
        unpack(bad, tmp_path / "out")
    assert not (tmp_path / "escape.txt").exists()


def test_a_web_page_instead_of_a_file_without_md5_is_refused(tmp_path):
    """Google Drive answers a large or popular file with an HTML notice (quota, virus scan): a
    file with no published MD5 that comes back as a web page is refused, and nothing is saved."""
    served = tmp_path / "served"
    served.mkdir()
    (served / "detections.json").write_text(
        "<!DOCTYPE html><html><head><title>Google Drive - Virus scan warning</title></head>"
        "<body>Google Drive can't scan this file for viruses.</body></html>")
    (served / "real.json").write_text('[{"image_id": 1, "bbox": [0, 0, 5, 5], "score": 0.9}]')
    server = _serve(served)
    port = server.server_address[1]
    try:
        dest = tmp_path / "out" / "COCO_val2017_detections_AP_H_56_person.json"
        with pytest.raises(UserInputError, match="sent a web page"):
            fetch(f"http://127.0.0.1:{port}/detections.json", dest, md5=None, progress=False)
        assert not dest.exists() and not list(dest.parent.glob("*.part"))
        fetch(f"http://127.0.0.1:{port}/real.json", dest, md5=None, progress=False)  # JSON is fine
        assert json.loads(dest.read_text())[0]["score"] == 0.9
    finally:
        server.shutdown()
        server.server_close()


def test_datasets_without_a_direct_url_say_where_to_get_them(tmp_path, capsys):
    from trainers.data import download

    for name in ("crowdpose", "ochuman", "aic", "coco_wholebody"):
        with pytest.raises(SystemExit) as code:
            download.main([name, "--out", str(tmp_path / name)])
        err = capsys.readouterr().err
        assert code.value.code == 2
        assert "no direct download" in err and "DIR/" in err and err.count("\n") == 1
        assert not (tmp_path / name).exists()
