"""Download COCO or MPII into the layouts posenas reads.

    python -m trainers.data.download coco|mpii --out DIR [--no-use_dt] [--no-train]
                                     [--keep-archives] [--base-url URL]

- **coco**: ``train2017.zip``, ``val2017.zip`` and ``annotations_trainval2017.zip`` from
  images.cocodataset.org (MD5s as published with them), unpacked as COCO unzips
  (``DIR/annotations``, ``DIR/train2017``, ``DIR/val2017``), and HRNet's person-detection file
  ``DIR/person_detection_results/COCO_val2017_detections_AP_H_56_person.json`` that
  ``--use_dt`` reads (skip it with ``--no-use_dt``).
- **mpii**: the images from the MPI (``mpii_human_pose_v1.tar.gz``) into ``DIR/images``, and
  the official annotations as HRNet converted them to JSON (the archive mmpose hosts), renamed to
  what our loader reads: ``DIR/annot/{train,valid}.json`` and ``DIR/annot/gt_valid.mat``.

CrowdPose, OCHuman and COCO-WholeBody's annotations are published behind Google Drive / Baidu
links only (no stable direct URL with a checksum), and AI Challenger is no longer distributed:
``download NAME`` for those says where to get them and the layout to unpack them into, exit 2
(COCO-WholeBody's images are COCO's: ``download coco`` fetches them).

Downloads stream to ``NAME.part`` with a progress bar and **resume** from where they stopped
(HTTP ``Range``) when run again; a finished file is checked against its MD5 where one is
published, then unpacked. ``--base-url`` fetches every file by name from a mirror instead
(the tests use a local server).
"""
from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import sys
import tarfile
import urllib.error
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path

from trainers.atomic import publish
from search_space.errors import UserInputError
from trainers.cli import ArgumentParser, cli_errors, output_dir

__all__ = ["Remote", "SOURCES", "BY_HAND", "fetch", "md5sum", "unpack", "download_dataset"]

_CHUNK = 1 << 20


@dataclass(frozen=True)
class Remote:
    """One file to fetch: its URL, published MD5 (None: none published), and what to do
    with it — ``unpack`` into ``DIR/<into>``, or ``save`` as ``DIR/<into>``."""

    url: str
    md5: str | None
    into: str
    action: str = "unpack"

    @property
    def name(self) -> str:
        return self.url.rsplit("/", 1)[-1].split("?", 1)[0]


_DET = "person_detection_results/COCO_val2017_detections_AP_H_56_person.json"

SOURCES: dict[str, list[Remote]] = {
    "coco": [
        Remote("http://images.cocodataset.org/annotations/annotations_trainval2017.zip",
               "f4bbac642086de4f52a3fdda2de5fa2c", ""),
        Remote("http://images.cocodataset.org/zips/val2017.zip",
               "442b8da7639aecaf257c1dceb8ba8c80", ""),
        Remote("http://images.cocodataset.org/zips/train2017.zip",
               "cced6f7f71b7629ddf16f17bbcfab6b2", ""),
        # HRNet's detections (human AP 56.4), as its README links them
        Remote("https://drive.google.com/uc?export=download&id=1ygw57X-mh0QBfENB-U5DsuSauGIu-8RB",
               None, _DET, action="save"),
    ],
    "mpii": [
        Remote("https://download.openmmlab.com/mmpose/datasets/mpii_annotations.tar", None,
               "annot"),
        Remote("https://datasets.d2.mpi-inf.mpg.de/andriluka14cvpr/mpii_human_pose_v1.tar.gz",
               None, ""),
    ],
}
#: datasets without a direct public URL: where to get them, and where their files go
BY_HAND: dict[str, str] = {
    "crowdpose": "its images and json/ annotations are linked (Google Drive) from "
                 "https://github.com/Jeff-sjtu/CrowdPose: unpack them as DIR/images/*.jpg and "
                 "DIR/json/crowdpose_{trainval,test}.json",
    "ochuman": "its images and COCO-format annotations are linked (Google Drive) from "
               "https://github.com/liruilong940607/OCHumanApi: DIR/images/*.jpg and "
               "DIR/ochuman_coco_format_{val,test}_range_0.00_1.00.json",
    "aic": "AI Challenger 2017 is no longer distributed by its site; a copy unpacked as "
           "DIR/ai_challenger_keypoint_{train_20170902,validation_20170911}/ (or mmpose's "
           "annotations/aic_{train,val}.json) is read as it is",
    "coco_wholebody": "its annotations are linked (Google Drive / Baidu) from "
                      "https://github.com/jin-s13/COCO-WholeBody: save them as "
                      "DIR/annotations/coco_wholebody_{train,val}_v1.0.json; the images are "
                      "COCO's (python -m trainers.data.download coco --out DIR)",
}
#: the names the detection file and the MPII archives get when fetched from ``--base-url``
_MIRROR_NAMES = {SOURCES["coco"][3].url: "COCO_val2017_detections_AP_H_56_person.json"}


def md5sum(path: Path) -> str:
    """The MD5 of a file, read in chunks."""
    digest = hashlib.md5()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _progress(total: int | None, initial: int, name: str):
    from tqdm import tqdm

    return tqdm(total=total, initial=initial, unit="B", unit_scale=True, unit_divisor=1024,
                desc=name, file=sys.stdout, mininterval=1.0)


def fetch(url: str, dest: Path, md5: str | None = None, progress: bool = True,
          timeout: float = 60.0) -> Path:
    """Download ``url`` to ``dest``, resuming a ``dest.part`` left by an earlier run.

    Raises:
        UserInputError: the server refuses, the connection drops (run again to resume), or
            the finished file does not match ``md5`` (the partial file is removed).
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    if dest.is_file() and (md5 is None or md5sum(dest) == md5):
        return dest
    part = dest.with_name(dest.name + ".part")
    have = part.stat().st_size if part.is_file() else 0
    request = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as err:
        if err.code == 416 and have:  # the part is already complete
            response = None
        else:
            raise UserInputError(url, f"download refused (HTTP {err.code} {err.reason})") from None
    except (urllib.error.URLError, OSError) as err:
        raise UserInputError(url, f"cannot connect ({getattr(err, 'reason', err)})") from None
    if response is not None:
        with response:
            resumed = response.status == 206
            if not resumed:
                have = 0  # the server sent the whole file
            length = response.headers.get("Content-Length")
            total = have + int(length) if length is not None else None
            bar = _progress(total, have, dest.name) if progress else None
            try:
                with open(part, "ab" if resumed else "wb") as f:
                    while True:
                        try:
                            chunk = response.read(_CHUNK)
                        except (OSError, ValueError) as err:
                            raise UserInputError(url, f"connection lost after {have} bytes "
                                                 f"({err}); run again to resume") from None
                        if not chunk:
                            break
                        f.write(chunk)
                        have += len(chunk)
                        if bar is not None:
                            bar.update(len(chunk))
            finally:
                if bar is not None:
                    bar.close()
            if total is not None and have < total:
                raise UserInputError(url, f"connection lost after {have} of {total} bytes; "
                                     "run again to resume")
    if md5 is not None:
        got = md5sum(part)
        if got != md5:
            part.unlink()
            raise UserInputError(str(dest), f"MD5 {got} does not match the published {md5}; "
                                 "the partial download was removed, run again")
    elif _is_web_page(part) and dest.suffix.lower() not in (".html", ".htm"):
        part.unlink()
        raise UserInputError(url, f"the server sent a web page, not {dest.name} (Google Drive "
                             "does so for a quota or virus-scan notice): open the link in a "
                             f"browser and save the file as {dest}")
    publish(part, dest)
    return dest


def _is_web_page(path: Path) -> bool:
    """Whether a downloaded file without a published MD5 is an HTML page (an interstitial)."""
    with open(path, "rb") as f:
        head = f.read(512).lstrip().lower()
    return head.startswith((b"<!doctype html", b"<html"))


def unpack(archive: Path, into: Path) -> None:
    """Unpack a zip or tar archive into ``into``, refusing members that would land outside it."""
    into.mkdir(parents=True, exist_ok=True)
    root = into.resolve()
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as z:
            for member in z.namelist():
                if not (root / member).resolve().is_relative_to(root):
                    raise UserInputError(str(archive), f"unsafe path in archive: {member}")
            z.extractall(into)
        return
    try:
        with tarfile.open(archive) as t:
            t.extractall(into, filter="data")  # no absolute paths, links out, devices
    except tarfile.TarError as err:
        raise UserInputError(str(archive), f"not a zip or tar archive ({err})") from None


def _arrange_mpii(out: Path) -> None:
    """mmpose's annotation archive (``annotations/mpii_{train,val}.json``, ``mpii_gt_val.mat``)
    → ``annot/{train,valid}.json`` and ``annot/gt_valid.mat``."""
    src = out / "annot" / "annotations"
    for old, new in (("mpii_train.json", "train.json"), ("mpii_val.json", "valid.json"),
                     ("mpii_gt_val.mat", "gt_valid.mat")):
        if (src / old).is_file():
            (src / old).replace(out / "annot" / new)
    if src.is_dir():
        shutil.rmtree(src)


def download_dataset(name: str, out: Path, use_dt: bool = True, keep_archives: bool = False,
                     base_url: str | None = None, progress: bool = True,
                     sources: dict[str, list[Remote]] | None = None, train: bool = True) -> list[str]:
    """Fetch, check and unpack dataset ``name`` into ``out``; returns what was done, per file.
    ``sources`` replaces :data:`SOURCES` (a mirror with other checksums; the tests)."""
    sources = SOURCES if sources is None else sources
    if name in BY_HAND and name not in sources:
        raise UserInputError("argument", f"{name} has no direct download: {BY_HAND[name]}",
                             field="dataset")
    if name not in sources:
        raise UserInputError("argument", f"unknown dataset {name!r}; known: {', '.join(sources)}")
    done = []
    downloads = out / "downloads"
    for remote in sources[name]:
        if (remote.into == _DET and not use_dt) or (not train and remote.name == "train2017.zip"):
            continue
        url = remote.url
        filename = _MIRROR_NAMES.get(url, remote.name)
        if base_url:
            url = base_url.rstrip("/") + "/" + filename
        if remote.action == "save":
            fetch(url, out / remote.into, remote.md5, progress)
            done.append(f"{filename}: saved as {remote.into}")
            continue
        archive = fetch(url, downloads / filename, remote.md5, progress)
        target = out / remote.into if remote.into else out
        unpack(archive, target)
        done.append(f"{filename}: {'MD5 ok, ' if remote.md5 else ''}unpacked into {target}")
        if not keep_archives:
            archive.unlink()
    if name == "mpii":
        _arrange_mpii(out)
    if downloads.is_dir() and not any(downloads.iterdir()):
        downloads.rmdir()
    return done


def _parser() -> argparse.ArgumentParser:
    p = ArgumentParser(prog="python -m trainers.data.download", description=__doc__,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("dataset", choices=sorted(SOURCES) + sorted(BY_HAND),
                   help="coco and mpii download; the others say where to get them")
    p.add_argument("--out", required=True, help="the dataset root to create (dataset.root)")
    p.add_argument("--use_dt", action=argparse.BooleanOptionalAction, default=None,
                   help="COCO: also fetch HRNet's person detections (default: yes)")
    p.add_argument("--keep-archives", action="store_true", help="keep the downloaded archives")
    p.add_argument("--no-train", action="store_true",
                   help="COCO: skip train2017 (18 GB), enough to evaluate")
    p.add_argument("--base-url", help="fetch every file by name from this mirror")
    p.add_argument("--no-progress", action="store_true")
    return p


@cli_errors
def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.dataset in BY_HAND:
        raise UserInputError("argument", f"{args.dataset} has no direct download: "
                             f"{BY_HAND[args.dataset]}", field="dataset")
    if args.dataset != "coco" and args.use_dt is not None:
        raise UserInputError("argument", f"{args.dataset} has no person detections to fetch",
                             field="--use_dt" if args.use_dt else "--no-use_dt")
    if args.dataset != "coco" and args.no_train:
        raise UserInputError("argument", f"COCO only: {args.dataset} comes as one archive",
                             field="--no-train")
    out = output_dir(args.out, "--out")
    done = download_dataset(args.dataset, out, args.use_dt is not False, args.keep_archives, args.base_url,
                            not args.no_progress, train=not args.no_train)
    for line in done:
        print(line)
    print(json.dumps({"dataset": args.dataset, "root": str(out)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
