"""Data, targets, losses, decoding, evaluation and training loops for posenas."""
