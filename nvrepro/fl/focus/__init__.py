"""FOCUS: fairness via agent-awareness in federated learning (arXiv 2207.10265), on Flower.

* :mod:`~nvrepro.fl.focus.faa`: the FAA metric (the spread of agents' excess losses over their own
  optima) and the form used; :mod:`~nvrepro.fl.focus.em`: the E-step (soft responsibilities from
  losses), IFCA's hard assignment, the prior, the M-step (per-cluster weighted FedAvg), serving;
* tasks (:mod:`~nvrepro.fl.focus.tasks`; by name: :mod:`~nvrepro.fl.focus.registry`):
  :mod:`~nvrepro.fl.focus.linear` (exact excess losses), :mod:`~nvrepro.fl.focus.digits` (images,
  label-noise agents), :mod:`~nvrepro.fl.focus.text` (two writing styles, corrupted-text agents);
* Flower: :mod:`~nvrepro.fl.focus.client` (one ``ClientApp`` for every method),
  :mod:`~nvrepro.fl.focus.strategies` (FOCUS and IFCA as strategies; Flower's FedAvg and QFedAvg as
  baselines), :mod:`~nvrepro.fl.focus.runner` (settings, server-side FAA per round, several runs in
  one simulation on the engine of :func:`nvrepro.fl.simulation.simulate`);
* notebooks: :mod:`~nvrepro.fl.focus.linear_experiment` (03), :mod:`~nvrepro.fl.focus.tasks_experiment`
  (04), with :mod:`~nvrepro.fl.focus.compare`, :mod:`~nvrepro.fl.focus.figures` and
  :mod:`~nvrepro.fl.focus.exercises`.
"""
