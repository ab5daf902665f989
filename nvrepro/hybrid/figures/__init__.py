"""Plots of the hybrid track, one module per notebook (``ssd`` 01, ``why_hybrid`` 02, ``inference`` 03,
``fp8`` 04, ``minipuzzle`` 05). Each takes the plain-data result of that notebook's experiment module
(``run(profile, seed)``); what a figure claims lives with the experiment, not here."""

from nvrepro.hybrid.figures.ssd import plot_ssd_scaling, plot_decay_matrix
from nvrepro.hybrid.figures.why_hybrid import plot_recall_grid, plot_lm_curves, plot_state_sweep
from nvrepro.hybrid.figures.inference import plot_decode_cost, plot_full_scale, plot_cache_explorer
from nvrepro.hybrid.figures.fp8 import plot_fp8_loss_gap, plot_fp8_tensor_stats, plot_fp8_format
from nvrepro.hybrid.figures.minipuzzle import plot_layer_importance, plot_minipuzzle_recovery, plot_budget_explorer

__all__ = ['plot_ssd_scaling', 'plot_decay_matrix', 'plot_recall_grid', 'plot_lm_curves', 'plot_state_sweep', 'plot_decode_cost', 'plot_full_scale', 'plot_cache_explorer', 'plot_fp8_loss_gap', 'plot_fp8_tensor_stats', 'plot_fp8_format', 'plot_layer_importance', 'plot_minipuzzle_recovery', 'plot_budget_explorer']
