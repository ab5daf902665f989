"""Federated learning on Flower: user-level DP-FedAvg with public data (arXiv 2305.12132) and, in
:mod:`nvrepro.fl.focus`, FOCUS (arXiv 2207.10265), which reuses the same simulation machinery.

Federated rounds run on Flower (``flwr``): its simulation engine (Ray) for many clients on one
machine or a Ray cluster, its deployment engine (SuperLink + SuperNodes) for real clients. Nothing
here is a home-made federated loop. Privacy accounting goes through ``dp-accounting``.

* :mod:`~nvrepro.fl.users`: deterministic synthetic users (private invented words, own topic
  mixtures) and public text; :mod:`~nvrepro.fl.user_data`: real users' text from a local dataset;
* :mod:`~nvrepro.fl.task`: the on-device LM, a user's rows, local training, nats per byte;
* :mod:`~nvrepro.fl.client` (``ClientApp``) and :mod:`~nvrepro.fl.server` (``ServerApp``: DP-FedAvg
  inside Flower's server-side fixed-clipping wrapper, Poisson or fixed-size client sampling);
  :mod:`~nvrepro.fl.simulation`: one or several arms on the simulation engine;
* :mod:`~nvrepro.fl.clipping`: one DP-FedAvg round without a framework (the reference the tests and
  notebook 01 use); :mod:`~nvrepro.fl.accounting`: epsilon of many rounds (Poisson or fixed-size,
  RDP or PLD), the noise multiplier for a target epsilon, tables and an explorer;
* :mod:`~nvrepro.fl.public`: public pool, tokenizers, pretraining, distillation, the
  distribution-matching sampler;
* :mod:`~nvrepro.fl.arms` (settings calibrated to epsilon, arm summaries),
  :mod:`~nvrepro.fl.dp_experiment` (notebook 01), :mod:`~nvrepro.fl.public_experiment`
  (notebook 02), :mod:`~nvrepro.fl.figures`, :mod:`~nvrepro.fl.exercises`.

Full scale: ``configs/fl/full_scale/`` is a Flower App (``flwr run``) with a cross-device run config.
"""
