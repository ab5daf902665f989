"""Model layers: Mamba-2 (SSD), attention, FFN, norms, RoPE."""
