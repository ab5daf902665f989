"""Evaluation building blocks shared by the papers: answer metrics and confidence intervals.

* :mod:`~nvrepro.core.evaluation.answers` -- the standard answer normalisation, exact match and
  token F1 (SQuAD's definitions), used by QA-style benchmarks (RankRAG, InstructRetro, ...).
* :mod:`~nvrepro.core.evaluation.modes` -- :func:`eval_mode`: evaluate a model without autograd and
  give it back in the training state it had.
* :mod:`~nvrepro.core.evaluation.intervals` -- an :class:`Estimate` with its confidence interval:
  Wilson's for a proportion (accuracy over examples), a bootstrap one for any other mean (over
  examples or seeds). A toy claim is judged on such an interval, not on one number.

Nothing here imports Lightning.
"""

from nvrepro.core.evaluation.answers import exact_match, normalize_answer, token_f1
from nvrepro.core.evaluation.intervals import Estimate, bootstrap_mean, wilson
from nvrepro.core.evaluation.modes import eval_mode

__all__ = ["Estimate", "bootstrap_mean", "eval_mode", "exact_match", "normalize_answer", "token_f1", "wilson"]
