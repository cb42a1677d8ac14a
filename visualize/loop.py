"""`make demo`: the whole loop on the embedded synthetic data.

    python -m trainers.demo [--out runs/demo] [--data data/synthetic_coco] [--train N --val M]
                            [--search-cfg CFG] [--cfg CFG] [--search-epochs E] [KEY VALUE ...]

1. writes the synthetic COCO-layout dataset (once);
2. searches ``configs/search/synthetic_tiny_at_plain.yaml`` with first-order DARTS
   (``strategies.search --strategy darts``): the tiny space under a hard budget of the plain
   head's GFLOPs, the search-quality benchmark's winner; ``OUT/search/arch.json``,
   ``history.jsonl``;
3. the Prune step (``strategies.prune``): ``OUT/search/derived.json`` and the supernet's weights
   for it, ``derived.pth``;
4. prints the --param_flop table of the derived network;
5. trains it with the recipe of ``configs/models/derived_synthetic.yaml`` from those weights
   (``train_derived.py --arch derived.json model.pretrained derived.pth``);
6. evaluates ``best.ckpt`` with flip test (``test.py --flip_test``);
7. draws the architecture (one-shot and derived), the α/β history, and predicted skeletons;
8. prints a summary: output paths, params, GFLOPs and the final ``AP=<value>`` line.

Overrides (``KEY VALUE``) apply to the training of the derived network.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import pytorch_lightning as pl

from search_space.counting import param_flop_report
from search_space.joints import keypoint_spec
from search_space.supernet import space_labels
from strategies.goal_target import resolve_goal_target
from strategies.oneshot import run_oneshot
from strategies.prune import prune_arch, write_inherited_state
from trainers.network.arch_file import ArchFile, load_arch, save_arch
from trainers.network.build import build_network, load_trained_network, spec_from_arch
from trainers.config.experiment import load_config
from trainers.data.images import ImageReadError, read_image
from trainers.data.synthetic import write_coco
from trainers.deploy.drawing import draw_skeleton, save_image
from trainers.engine.fit import evaluate_model, fit
from trainers.cli import ArgumentParser, cli_errors
from trainers.report import format_metrics, format_table
from visualize.arch import arch_graph, render
from trainers.evaluation.prediction import predict_image
from visualize.history import plot_history, read_history
from trainers.report import format_report

REPO = Path(__file__).resolve().parent.parent
DEMO_CONFIG = REPO / "configs" / "models" / "derived_synthetic.yaml"
SEARCH_CONFIG = REPO / "configs" / "search" / "synthetic_tiny_at_plain.yaml"
STEPS = 8
#: the strategy the demo searches with (benchmarks/search_quality.py reports it as the default)
SEARCH_STRATEGY = "darts"


def _parser() -> argparse.ArgumentParser:
    p = ArgumentParser(prog="python -m trainers.demo", description=__doc__,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="runs/demo")
    p.add_argument("--data", default="data/synthetic_coco")
    p.add_argument("--train", type=int, default=400, help="synthetic training images")
    p.add_argument("--val", type=int, default=100, help="synthetic validation images")
    p.add_argument("--cfg", default=str(DEMO_CONFIG), help="recipe for the derived network")
    p.add_argument("--search-cfg", default=str(SEARCH_CONFIG), help="the search space and budget")
    p.add_argument("--search-epochs", type=int, help="override search.epochs")
    p.add_argument("--search-override", action="append", default=[], metavar="KEY=VALUE",
                   help="an override for the search config (repeatable)")
    p.add_argument("--overlays", type=int, default=4, help="validation images to draw")
    p.add_argument("overrides", nargs="*", help="config overrides: KEY VALUE or KEY=VALUE")
    return p


def _draw_overlays(cfg, model, data: Path, out: Path, count: int) -> list[str]:
    ann = json.loads((data / "annotations" / "person_keypoints_val2017.json").read_text())
    spec = keypoint_spec(cfg.dataset.name)
    paths = []
    for image in ann["images"][:count]:
        boxes = [a["bbox"] for a in ann["annotations"]
                 if a["image_id"] == image["id"] and a["num_keypoints"] > 0]
        try:
            img = read_image(data / "images" / "val2017" / image["file_name"], color_rgb=False)
        except ImageReadError:
            continue
        if not boxes:
            continue
        for kpts in predict_image(model, cfg, img, boxes):
            draw_skeleton(img, kpts, spec, threshold=0.2)
        path = out / "overlays" / image["file_name"].replace(".jpg", ".png")
        save_image(path, img)
        paths.append(str(path))
    return paths


def _step(k: int, text: str) -> None:
    print(f"[{k}/{STEPS}] {text}", flush=True)


def _search_and_prune(args: argparse.Namespace, data: Path,
                      search_dir: Path) -> tuple[float, ArchFile, ArchFile]:
    """Steps 2 and 3: the DARTS search at the training input size, then the Prune step with
    the supernet's weights inherited; the search's seconds, its architecture and the derived one."""
    train_over = list(args.overrides)
    search_over = ["dataset.root", str(data), *args.search_override]
    if args.search_epochs is not None:
        search_over += ["search.epochs", str(args.search_epochs)]
    # the search runs at the training input size, with the training loader settings
    for key in ("model.input_size", "train.num_workers"):
        if key in train_over:
            search_over += [key, train_over[train_over.index(key) + 1]]
    # a budget given as a reference network's cost is measured at the search's input size
    search_cfg = resolve_goal_target(load_config(args.search_cfg, search_over), args.search_cfg)
    decisions = len(space_labels(search_cfg.space, search_cfg.dataset.name))
    _step(2, f"searching {Path(args.search_cfg).name} with DARTS for {search_cfg.search.epochs} "
          f"epochs ({decisions} decisions)")
    t0 = time.time()
    run_oneshot(search_cfg, SEARCH_STRATEGY, search_dir, progress=False)
    search_s = time.time() - t0

    _step(3, "the Prune step: argmax of alpha/beta, weights inherited from the supernet")
    arch = load_arch(search_dir / "arch.json")
    derived = prune_arch(arch)  # logs what the search config's hard budget changed
    save_arch(search_dir / "derived.json", derived)
    write_inherited_state(derived, str(search_dir / "last.ckpt"), search_dir / "derived.pth")
    return search_s, arch, derived


@cli_errors
def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    start = time.time()
    data, out = Path(args.data), Path(args.out)
    if not (data / "annotations" / "person_keypoints_val2017.json").exists():
        _step(1, f"writing the synthetic COCO dataset to {data}")
        write_coco(data, args.train, args.val, seed=0)
    else:
        _step(1, f"using the synthetic COCO dataset in {data}")

    search_dir = out / "search"
    search_s, arch, derived = _search_and_prune(args, data, search_dir)

    cfg = load_config(args.cfg, ["dataset.root", str(data), "model.pretrained",
                                 str(search_dir / "derived.pth"), *args.overrides])
    pl.seed_everything(cfg.seed, verbose=False)
    spec = spec_from_arch(search_dir / "derived.json", cfg.dataset.name)
    model, info = build_network(spec, cfg.model.pretrained, scope=cfg.model.pretrained_scope), spec.record()
    report = param_flop_report(model, cfg.model.input_size)
    _step(4, "--param_flop of the derived network")
    print(format_report(report, "derived"))
    _step(5, f"training the derived network for {cfg.train.epochs} epochs")
    train_dir = out / "train"
    summary = fit(cfg, model, info, train_dir, progress=False)

    _step(6, "evaluating best.ckpt with flip test")
    _, _, best_model = load_trained_network(train_dir / "best.ckpt", cfg)
    result = evaluate_model(cfg, best_model, out / "test")
    metrics = result["metrics"]
    print(format_metrics(metrics))

    _step(7, "drawing the architecture, the search history and predictions")
    derived_graph = arch_graph(derived)
    graphs = [render(arch, out / "arch_search.svg"),
              render(derived, out / "arch_derived.svg", derived_graph),
              render(derived, out / "arch_derived.png", derived_graph)]
    history = plot_history(read_history(search_dir / "history.jsonl"), out / "search_history.png")
    overlays = _draw_overlays(cfg, best_model.cpu(), data, out, args.overlays)

    _step(8, "summary")
    h, w = cfg.model.input_size
    print(format_table(["output", "path"], [
        ["search", f"{search_dir / 'arch.json'}, {search_dir / 'history.jsonl'}"],
        ["derived architecture", f"{search_dir / 'derived.json'} (+ derived.pth)"],
        ["checkpoints", f"{train_dir / 'best.ckpt'}, {train_dir / 'last.ckpt'}"],
        ["per-epoch metrics", str(train_dir / "metrics.json")],
        ["COCO results", str(out / "test" / "keypoints_val2017_results.json")],
        ["architecture graphs", ", ".join(str(g) for g in graphs)],
        ["search history plot", str(history)],
        ["overlays", f"{out / 'overlays'} ({len(overlays)} images)"],
    ]))
    print(f"derived network at {h}x{w}: {report['params'] / 1e6:.3f}M params, "
          f"{report['gflops']:.3f} GFLOPs; search {search_s:.0f}s; best epoch AP "
          f"{summary['best']:.4f}; flip-test AP {metrics['AP']:.4f}; total {time.time() - start:.0f}s")
    print(f"AP={metrics['AP']:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
