"""RETRO and InstructRetro (arXiv:2304.06762, arXiv:2310.07713): the Retro model and its experiments."""
