"""DecodingTrust (arXiv 2306.11698): an eight-perspective trustworthiness harness for any causal LM."""
