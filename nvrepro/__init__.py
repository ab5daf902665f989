"""nvrepro: notebook-driven, tested reproductions of ten NVIDIA research papers.

Where things live, and which way imports go (each line imports only from the lines above it;
``tests/test_import_graph.py`` checks this and that there is no import cycle)::

    nvrepro/core/tooling/     runner (papermill), gallery (``nvrepro status``), figures + sidecars,
                              claims (text + predicate), intervals, profiles, weight cache, verdicts,
                              timing, paths, validation (ConfigError). No Lightning, no model code.
    nvrepro/core/lm/          ModelConfig, layers + the layer-kind registry (Mamba-2, attention, FFN,
                              gated and chunked cross-attention), PatternLM and its caches, the
                              model-class registry, fixed-shape decoding, info, HF interop.
    nvrepro/core/data/        tokenizers, the local corpus, synthetic tasks, datamodules, local JSONL
                              records, prompt/answer rows with answer-only labels.
    nvrepro/core/retrieval/   RETRO-style chunks, same-document exclusion, the frozen sentence
                              embedder, faiss indexes, the neighbour table, ``nvrepro build-db``
                              (reads corpora through ``data``).
    nvrepro/core/vision/      dynamic high-resolution tiling (InternVL's rule, Pillow), a small ViT
                              encoder, the 2x2 pixel shuffle, the MLP projector (torch only).
    nvrepro/core/multimodal/  the decoder-only vision-language model (ViT -> pixel shuffle -> projector ->
                              image tokens in the LM's sequence) on PatternLM.
    nvrepro/core/evaluation/  eval_mode, loss/accuracy over supervised positions, batched
                              generation and option scoring, exact match / token F1, check_number.
    nvrepro/core/training/    the LightningModule base (CausalLMModule), quiet_fit, progress bar,
                              precision (FP8 as a callback), weights (init_from), YAML runs,
                              cached experiment arms (train_arm), export-hf / import-hf commands.
    nvrepro/<paper>/          one paper each (hybrid = Nemotron-H, ultralong = UltraLong,
                              retro = the RETRO study and InstructRetro, ...):
                              its models, one experiment module per notebook (profiles,
                              ``run(profile, seed)``, claims, plots), exercises. Imports core only,
                              never another paper.
    nvrepro/cli.py            the ``nvrepro`` command: LightningCLI plus the subcommands above.

(``data``, ``lm`` and ``vision`` sit side by side: none imports another; ``retrieval`` reads ``data``;
``multimodal`` joins ``lm`` and ``vision``; ``training`` may use ``vision``.)
"""

__version__ = "0.1.0"
