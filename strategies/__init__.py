"""How to search: one-shot and multi-trial strategies over ``PoseSpace`` and the Prune step."""
