"""Evaluation building blocks shared by the papers.

* :mod:`~nvrepro.core.evaluation.modes` -- :func:`eval_mode`: evaluate without autograd and give
  the model back in the training state it had.
* :mod:`~nvrepro.core.evaluation.supervised` -- loss and argmax accuracy over supervised positions
  (``labels != -100``), per-position losses, teacher-forced answer loss.
* :mod:`~nvrepro.core.evaluation.generation` -- batched greedy generation and option scoring
  (grouped by length, exact for recurrent layers).
* :mod:`~nvrepro.core.evaluation.answers` -- the standard answer normalisation, exact match and
  token F1 (SQuAD's definitions), for QA-style benchmarks (RankRAG, InstructRetro, ...).
* :mod:`~nvrepro.core.evaluation.ranking` -- recall@k, reciprocal rank and nDCG of ranked passage
  lists, per question, through ``ir-measures``.
* Re-exported from :mod:`nvrepro.core.tooling`: :class:`Estimate` with :func:`wilson` /
  :func:`bootstrap_mean` intervals (claims are judged on them), and :func:`check_number`, the
  numeric exercise verdict.

Nothing here imports Lightning.
"""

from nvrepro.core.evaluation.answers import exact_match, normalize_answer, token_f1
from nvrepro.core.evaluation.generation import choose_option, generate_greedy, option_logprobs
from nvrepro.core.evaluation.modes import eval_mode
from nvrepro.core.evaluation.ranking import mean_metrics, ranking_metrics
from nvrepro.core.evaluation.supervised import (SupervisedScores, answer_loss, argmax_predictions,
                                                position_losses, supervised_scores, teacher_forced_batches)
from nvrepro.core.tooling.intervals import Estimate, bootstrap_mean, wilson
from nvrepro.core.tooling.verdicts import check_number

__all__ = ["Estimate", "SupervisedScores", "answer_loss", "argmax_predictions", "bootstrap_mean",
           "check_number", "choose_option", "eval_mode", "exact_match", "generate_greedy",
           "mean_metrics", "normalize_answer", "option_logprobs", "position_losses", "ranking_metrics", "supervised_scores",
           "teacher_forced_batches", "token_f1", "wilson"]
