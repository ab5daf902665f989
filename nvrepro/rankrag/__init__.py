"""RankRAG (arXiv 2407.02485): one instruction-tuned LLM that ranks retrieved contexts and answers from them.

* :mod:`~nvrepro.rankrag.prompts`: the one (question, context, answer) format of every task;
* :mod:`~nvrepro.rankrag.world`: a deterministic synthetic world (faker) of people and companies,
  rendered as short passages, with questions that need one passage or two;
* :mod:`~nvrepro.rankrag.blend`: stage I instructions and the stage II blend (context-rich QA,
  retrieval-augmented QA with hard negatives, context ranking, retrieval-augmented ranking);
* :mod:`~nvrepro.rankrag.data`: the world's BPE, answer-only labels, ``RankRAGDataModule``;
* :mod:`~nvrepro.rankrag.module`: ``RankRAGModule`` (``nvrepro fit --config configs/rankrag/...``);
* :mod:`~nvrepro.rankrag.pipeline`: retrieve top-N -> score by P("True") -> keep top-k -> answer;
  :mod:`~nvrepro.rankrag.retrieval_settings`: corpus, embedder, index, N and k as a config;
* :mod:`~nvrepro.rankrag.blend_experiment` (notebook 01) and :mod:`~nvrepro.rankrag.experiment`
  (notebook 02): runs, claims, summaries; :mod:`~nvrepro.rankrag.figures`; the explorer
  (:mod:`~nvrepro.rankrag.explorer`); exercise checkers (``*_exercises``).

Full scale: ``configs/rankrag/rankrag_llama3_{8b,70b}.yaml`` (the same module at Llama-3 shapes,
data and tokenizer from disk) and ``configs/rankrag/paper_retrieval.yaml``.

The retriever is core's (:mod:`nvrepro.core.retrieval.passages`), shared with RETRO's machinery.
"""
