"""Cosmos-Reason1 (arXiv 2503.15558): physical common sense and embodied reasoning, SFT then GRPO."""
