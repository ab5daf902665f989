"""Federated learning on Flower: user-level DP-FedAvg with public data (arXiv 2305.12132) and, later,
FOCUS (arXiv 2207.10265), which reuses the same machinery.

Federated rounds run on Flower (``flwr``): its simulation engine (Ray) for many clients on one
machine, its deployment engine (SuperLink + SuperNodes) for real clients. Nothing here is a
home-made federated loop. Privacy accounting goes through ``dp-accounting``.

* :mod:`~nvrepro.fl.clipping`: one DP-FedAvg round on the server, framework-free: clip each
  update to L2 norm C, sum, add N(0, (z C)^2), divide by m;
* :mod:`~nvrepro.fl.accounting`: epsilon of many rounds (Poisson or Flower's fixed-size client
  sampling, RDP or PLD), the noise multiplier for a target epsilon, tables and an explorer.
"""
