"""Metrics: COCO OKS AP (pycocotools COCOeval) and MPII PCKh."""
