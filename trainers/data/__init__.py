"""Pose datasets (COCO, MPII, synthetic), transforms and heatmap targets."""
