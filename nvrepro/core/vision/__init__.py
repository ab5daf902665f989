"""Vision building blocks shared by the vision-language papers (NVLM, Cosmos-Reason1): dynamic
high-resolution tiling (:mod:`~nvrepro.core.vision.tiling`), a small ViT encoder
(:mod:`~nvrepro.core.vision.vit`), the 2x2 pixel shuffle (:mod:`~nvrepro.core.vision.pixel_shuffle`) and
the MLP projector into the LLM (:mod:`~nvrepro.core.vision.projector`)."""
