"""Reproduction tooling: everything around an experiment, nothing inside a model.

Imports neither Lightning nor any other ``nvrepro`` package (a test checks), so the runner, the
gallery and the figure writer load fast and work where training cannot.

* :mod:`~nvrepro.core.tooling.paths`: where configs, figures and build outputs live;
* :mod:`~nvrepro.core.tooling.validation`: :class:`ConfigError` and the dataclass-from-dict check;
* :mod:`~nvrepro.core.tooling.profiles`: ``smoke`` / ``paper`` settings;
* :mod:`~nvrepro.core.tooling.claims`: a claim's text and its predicate, judged on intervals;
* :mod:`~nvrepro.core.tooling.figures`: ``save_figure`` and its metrics sidecar;
* :mod:`~nvrepro.core.tooling.gallery`: ``nvrepro status``, the README gallery from the sidecars;
* :mod:`~nvrepro.core.tooling.runner`: ``nvrepro reproduce``, the papermill runner;
* :mod:`~nvrepro.core.tooling.weight_cache`: paper-profile trained-weight cache keyed by code version;
* :mod:`~nvrepro.core.tooling.verdicts`: the exercise checkers' verdict type;
* :mod:`~nvrepro.core.tooling.timing`: side-by-side wall-clock measurements for benchmarks;
* :mod:`~nvrepro.core.tooling.compiling`: whether ``torch.compile`` works here (else eager code).
"""
