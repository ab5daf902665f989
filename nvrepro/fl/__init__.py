"""Federated learning on Flower: user-level DP-FedAvg with public data (arXiv 2305.12132) and, later,
FOCUS (arXiv 2207.10265), which reuses the same machinery.

Federated rounds run on Flower (``flwr``): its simulation engine (Ray) for many clients on one
machine, its deployment engine (SuperLink + SuperNodes) for real clients. Nothing here is a
home-made federated loop. Privacy accounting goes through ``dp-accounting``.
"""
