"""Training: the LightningModule base, one quiet ``fit``, precision (FP8), weights, YAML runs.

* :mod:`~nvrepro.core.training.module`: :class:`LMModule`, the LightningModule every paper extends
  (generic over the model; a ``model_inputs`` hook maps a batch to the model's keyword inputs);
* :mod:`~nvrepro.core.training.fitting`: ``quiet_fit`` (one Trainer builder, logs silenced);
* :mod:`~nvrepro.core.training.progress`: the step progress bar;
* :mod:`~nvrepro.core.training.precision`: FP8 recipes and backends, applied by a callback;
* :mod:`~nvrepro.core.training.weights`: save / load / ``init_from`` for LM weights;
* :mod:`~nvrepro.core.training.yaml_fit`: build and fit the objects a LightningCLI YAML names.

Imports :mod:`nvrepro.core.tooling`, :mod:`nvrepro.core.lm` and :mod:`nvrepro.core.data`.
"""
