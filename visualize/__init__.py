"""Architecture graphs, parameter/FLOP reports, keypoint and heatmap overlays."""
