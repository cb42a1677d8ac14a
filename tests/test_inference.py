import numpy as np
import torch

from search_space.joints import COCO
from trainers.evaluation.prediction import flip_test_predictor


class Seer(torch.nn.Module):
    """A 'model' whose heatmaps are fixed per input orientation: joint k peaks at column 2+k//4
    for the input as given, and at the mirrored column for a mirrored input (it checks the
    left half against the right half of the image to know which one it sees)."""

    def forward(self, x):
        n, _, h, w = x.shape
        out = torch.zeros(n, 17, h // 4, w // 4)
        mirrored = x[..., : w // 2].mean() < x[..., w // 2:].mean()
        for k in range(17):
            col = 2 + k // 4
            if mirrored:  # a mirrored person: left/right joints swap and columns mirror
                src = COCO.flip_permutation()[k]
                out[:, k, 3, (w // 4) - 1 - (2 + src // 4)] = 1.0
            else:
                out[:, k, 3, col] = 1.0
        return out


def test_flip_test_averages_with_the_mirrored_prediction():
    image = torch.zeros(2, 64, 48, 3, dtype=torch.uint8)  # loader crops: (N, H, W, 3)
    image[:, :, :24] = 200  # bright left half: the unmirrored orientation
    batch = {"image": image}
    plain = flip_test_predictor(Seer(), COCO.flip_pairs, flip_test=False)(batch)
    both = flip_test_predictor(Seer(), COCO.flip_pairs, flip_test=True, shift_heatmap=False)(batch)
    # a mirror-consistent model: flipping back reproduces the plain heatmaps exactly
    torch.testing.assert_close(both, plain)
    shifted = flip_test_predictor(Seer(), COCO.flip_pairs, flip_test=True, shift_heatmap=True)(batch)
    # by hand: the flipped-back heatmap is the plain one; HRNet's shift moves it one column
    # right, so each joint has half its mass at column 2 + k//4 and half at 3 + k//4 (row 3)
    expected = torch.zeros_like(plain)
    for k in range(17):
        expected[:, k, 3, 2 + k // 4] += 0.5
        expected[:, k, 3, 3 + k // 4] += 0.5
    torch.testing.assert_close(shifted, expected)
    assert not torch.equal(shifted, plain)  # the one-pixel shift moves half the mass
    assert np.isclose(float(shifted.sum()), float(plain.sum()))
