"""Vision-language models on the pattern LM: a ViT, the pixel shuffle and the MLP projector feeding a decoder."""
