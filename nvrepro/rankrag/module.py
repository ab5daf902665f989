"""``RankRAGModule``: one causal LM instruction-tuned to rank contexts and to answer from them.

RankRAG (arXiv 2407.02485 Sec. 4.1) fine-tunes a single LLM on one loss over the responses of a
blend of tasks cast to (question, context, answer); ranking is just another answer ("True" /
"False", or the numbers of the relevant passages). So the module is a
:class:`~nvrepro.core.training.module.CausalLMModule` (next-token cross-entropy over positions with
labels; :class:`~nvrepro.rankrag.data.RankRAGDataModule` labels the answer and ``<eos>`` only),
started from a checkpoint (``init_from``), plus one validation measure: ``val/answer_em``, the share of rows whose every answer token is the
argmax (what greedy decoding would write, teacher-forced). The same class trains the toy model
and Llama-3 8B / 70B (``configs/rankrag/``); stage I and stage II are two runs of it, the second
started from the first (``init_from``).
"""

from __future__ import annotations

from nvrepro.core.data.synthetic import accuracy as teacher_forced_exact
from nvrepro.core.lm.config import ModelConfig
from nvrepro.core.training.module import InitializedLMModule, OptimConfig


class RankRAGModule(InitializedLMModule):
    """Answer-only next-token training of a pattern-built LM on a RankRAG blend."""

    def __init__(self, model: ModelConfig | None = None, optim: OptimConfig | None = None,
                 init_from: str | None = None):
        # Own signature: LightningCLI reads the arguments from it. ``init_from``: stage II starts
        # from the stage I checkpoint.
        super().__init__(model=model, optim=optim, init_from=init_from)

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        logits = self.model(**self.model_inputs(batch))
        self._step(batch, "val", logits=logits)
        self.log("val/answer_em", teacher_forced_exact(logits, batch["labels"]).mean(), on_epoch=True,
                 sync_dist=True, batch_size=len(logits))
