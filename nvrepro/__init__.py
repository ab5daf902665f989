"""nvrepro: notebook-driven, tested reproductions of ten NVIDIA research papers.

``nvrepro.core`` holds the shared building blocks (layers, the pattern-built LM, data, the base
LightningModule, the CLI); each paper lives in its own subpackage and imports only ``core``.
"""

__version__ = "0.1.0"
