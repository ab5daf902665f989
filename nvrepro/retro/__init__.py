"""RETRO / RETRO++ / InstructRetro (arXiv 2304.06762, 2310.07713): retrieval-augmented pretraining at toy scale."""
