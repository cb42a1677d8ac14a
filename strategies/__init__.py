"""How to search: a registry of strategies built on NNI, and the Prune step."""
