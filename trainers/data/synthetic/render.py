"""Drawing synthetic figures: limbs as shaded tubes, a head with eyes, nose and ears, cluttered
backgrounds, and the owner map that tells which joints are hidden (``v=1``)."""
from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from trainers.data.synthetic.figure import OWNERS, PART_ID, Figure

__all__ = ["RenderedPerson", "render_image", "person_count_probs"]

class Canvas:
    """An image plus an owner map (which figure part is on top at each pixel) and masks."""

    def __init__(self, image: np.ndarray) -> None:
        self.image = image
        self.owner = np.zeros(image.shape[:2], np.int32)
        self.masks: list[np.ndarray] = []

    def begin_figure(self) -> None:
        self.masks.append(np.zeros(self.image.shape[:2], np.uint8))

    def _label(self, part: str) -> int:
        return len(self.masks) * 64 + PART_ID[part]

    def limb(self, a: np.ndarray, b: np.ndarray, thickness: float, color, part: str) -> None:
        t = max(2, int(round(thickness)))
        pa, pb = tuple(int(round(v)) for v in a), tuple(int(round(v)) for v in b)
        dark = tuple(int(c * 0.6) for c in color)
        light = tuple(int(min(255, c * 1.15 + 20)) for c in color)
        cv2.line(self.image, pa, pb, dark, t, cv2.LINE_AA)
        cv2.line(self.image, pa, pb, color, max(1, int(t * 0.7)), cv2.LINE_AA)
        off = np.array([1.0, -1.0]) * t * 0.15
        cv2.line(self.image, tuple(int(round(v)) for v in a + off),
                 tuple(int(round(v)) for v in b + off), light, max(1, int(t * 0.25)), cv2.LINE_AA)
        cv2.line(self.owner, pa, pb, self._label(part), t)
        cv2.line(self.masks[-1], pa, pb, 1, t)

    def polygon(self, pts: list[np.ndarray], color, part: str) -> None:
        poly = np.round(np.array(pts)).astype(np.int32)
        cv2.fillPoly(self.image, [poly], tuple(int(c * 0.6) for c in color), cv2.LINE_AA)
        inner = poly.mean(axis=0) + (poly - poly.mean(axis=0)) * 0.85
        cv2.fillPoly(self.image, [np.round(inner).astype(np.int32)], color, cv2.LINE_AA)
        cv2.fillPoly(self.owner, [poly], self._label(part))
        cv2.fillPoly(self.masks[-1], [poly], 1)

    def disc(self, c: np.ndarray, radius: float, color, part: str | None, outline: bool = True) -> None:
        rr = max(1, int(round(radius)))
        pc = tuple(int(round(v)) for v in c)
        if outline:
            cv2.circle(self.image, pc, rr, tuple(int(v * 0.6) for v in color), -1, cv2.LINE_AA)
            cv2.circle(self.image, pc, max(1, int(rr * 0.85)), color, -1, cv2.LINE_AA)
        else:
            cv2.circle(self.image, pc, rr, color, -1, cv2.LINE_AA)
        if part is not None:
            cv2.circle(self.owner, pc, rr, self._label(part), -1)
            cv2.circle(self.masks[-1], pc, rr, 1, -1)


def _draw_arm(cv: Canvas, fig: Figure, side: str) -> None:
    p, s = fig.points, side[0]
    cv.limb(p[f"{side}_shoulder"], p[f"{side}_elbow"], fig.thickness["uarm"], fig.shirt, f"{s}_uarm")
    cv.limb(p[f"{side}_elbow"], p[f"{side}_wrist"], fig.thickness["farm"], fig.skin, f"{s}_farm")
    cv.disc(p[f"{side}_elbow"], fig.thickness["farm"] * 0.55, fig.skin, f"{s}_farm")
    cv.disc(p[f"{side}_wrist"], fig.thickness["farm"] * 0.75, fig.skin, f"{s}_farm")


def draw_figure(cv: Canvas, fig: Figure) -> None:
    p = fig.points
    cv.begin_figure()
    for side, front in zip(("left", "right"), fig.arms_in_front):
        if not front:
            _draw_arm(cv, fig, side)
    for side in ("left", "right"):
        s = side[0]
        cv.limb(p[f"{side}_hip"], p[f"{side}_knee"], fig.thickness["thigh"], fig.pants, f"{s}_thigh")
        cv.limb(p[f"{side}_knee"], p[f"{side}_ankle"], fig.thickness["shin"], fig.pants, f"{s}_shin")
        cv.disc(p[f"{side}_knee"], fig.thickness["shin"] * 0.55, fig.pants, f"{s}_shin")
        cv.disc(p[f"{side}_ankle"], fig.thickness["shin"] * 0.7, (40, 40, 40), f"{s}_shin")
    cv.polygon([p["left_shoulder"], p["right_shoulder"], p["right_hip"], p["left_hip"]],
               fig.shirt, "torso")
    cv.limb(p["thorax"], p["upper_neck"], fig.thickness["neck"], fig.skin, "neck")
    r = fig.head_radius
    for side in ("left", "right"):
        cv.disc(p[f"{side}_ear"], r * 0.3, fig.skin, f"{side[0]}_ear")
    cv.disc(p["head_center"], r, fig.skin, "head")
    for side in ("left", "right"):
        cv.disc(p[f"{side}_eye"], max(1.0, r * 0.13), (25, 25, 25), None, outline=False)
    cv.disc(p["nose"], max(1.0, r * 0.12), tuple(int(c * 0.7) for c in fig.skin), None, outline=False)
    for side, front in zip(("left", "right"), fig.arms_in_front):
        if front:
            _draw_arm(cv, fig, side)


def background(rng: np.random.Generator, width: int, height: int) -> np.ndarray:
    c0, c1 = rng.integers(0, 256, 3), rng.integers(0, 256, 3)
    angle = rng.uniform(0, 2 * math.pi)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    t = (xx * math.cos(angle) + yy * math.sin(angle))
    t = (t - t.min()) / max(1e-6, float(t.max() - t.min()))
    image = (c0[None, None] * (1 - t[..., None]) + c1[None, None] * t[..., None]).astype(np.uint8)
    image = np.ascontiguousarray(image)
    for _ in range(int(rng.integers(3, 9))):
        color = tuple(int(v) for v in (0.5 * rng.integers(0, 256, 3) + 0.5 * c0))
        kind = rng.integers(3)
        x, y = int(rng.integers(0, width)), int(rng.integers(0, height))
        if kind == 0:
            cv2.rectangle(image, (x, y), (x + int(rng.integers(10, 80)), y + int(rng.integers(10, 80))),
                          color, -1)
        elif kind == 1:
            cv2.circle(image, (x, y), int(rng.integers(5, 40)), color, -1, cv2.LINE_AA)
        else:
            cv2.line(image, (x, y), (int(rng.integers(0, width)), int(rng.integers(0, height))),
                     color, int(rng.integers(1, 4)), cv2.LINE_AA)
    return image


@dataclass
class RenderedPerson:
    """A figure as annotated: named points with visibility (2 seen, 1 hidden, 0 outside)."""

    points: dict[str, np.ndarray]
    visibility: dict[str, int]
    bbox: list[float]
    area: float
    head_box: tuple[np.ndarray, np.ndarray]


def render_image(rng: np.random.Generator, max_persons: int = 3
                 ) -> tuple[np.ndarray, list[RenderedPerson]]:
    """Draw one image (BGR uint8) and return it with its annotated persons."""
    width, height = int(rng.integers(224, 321)), int(rng.integers(224, 321))
    canvas = Canvas(background(rng, width, height))
    n = int(rng.choice(np.arange(1, max_persons + 1), p=person_count_probs(max_persons)))
    figures = []
    for _ in range(n):
        fig_h = height * rng.uniform(0.6, 0.95) / (1 + 0.2 * (n - 1))
        px = rng.uniform(0.1, 0.9) * width
        py = rng.uniform(0.45, 0.65) * height + rng.normal(0, 0.05) * height
        fig = Figure.sample(rng, np.array([px, py]), fig_h)
        draw_figure(canvas, fig)
        figures.append(fig)
    noise = rng.normal(0, 3.0, canvas.image.shape)
    image = np.clip(canvas.image.astype(np.float32) + noise, 0, 255).astype(np.uint8)
    image = cv2.GaussianBlur(image, (3, 3), 0.6)
    persons = []
    for i, fig in enumerate(figures):
        label_base = (i + 1) * 64
        points, visibility = {}, {}
        for name, owners in OWNERS.items():
            x, y = fig.points[name]
            xi, yi = int(round(x)), int(round(y))
            if not (0 <= x < width and 0 <= y < height):
                visibility[name] = 0
                points[name] = np.zeros(2)
                continue
            points[name] = fig.points[name].copy()
            top = canvas.owner[min(yi, height - 1), min(xi, width - 1)]
            visibility[name] = 2 if top in {label_base + PART_ID[o] for o in owners} else 1
        own = (canvas.owner >= label_base) & (canvas.owner < label_base + 64)
        ys, xs = np.nonzero(canvas.masks[i])
        bbox = ([float(xs.min()), float(ys.min()), float(xs.max() - xs.min() + 1),
                 float(ys.max() - ys.min() + 1)] if len(xs) else [0.0, 0.0, 0.0, 0.0])
        c, r = fig.points["head_center"], fig.head_radius
        persons.append(RenderedPerson(points, visibility, bbox, float(own.sum()),
                                      (c - r, c + r)))
    return image, persons


def person_count_probs(max_persons: int) -> np.ndarray:
    w = np.array([0.5, 0.3, 0.2, 0.1, 0.1][:max_persons])
    return w / w.sum()
