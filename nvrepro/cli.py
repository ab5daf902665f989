"""``nvrepro`` command line: LightningCLI for training plus the project's own subcommands.

    nvrepro fit|validate|test|predict --config configs/hybrid/toy_hybrid.yaml [--config configs/scale/ddp.yaml]
    nvrepro reproduce [--profile smoke|paper] [--only TRACK]
    nvrepro info --config FILE [--context N] [--batch B]
    nvrepro bench [--only ssd|mixer|decode|retrieval]
    nvrepro gpu-check [--only decode|train|ssd] [--json FILE] [--tiny]
    nvrepro export-hf --config FILE --out DIR  /  nvrepro import-hf --hf DIR --out FILE
    nvrepro status [--write-readme]
    nvrepro build-db --config configs/retro/toy_db.yaml
    nvrepro trust --config configs/trust/toy_unsafe.yaml [--out DIR]

Training configs name their LightningModule and DataModule by ``class_path``, so every paper's
modules run through the same entry point; scale overlays under ``configs/scale/`` change only
``trainer`` settings.
"""

from __future__ import annotations

import sys

SUBCOMMANDS = {
    "reproduce": "nvrepro.core.tooling.runner",
    "info": "nvrepro.core.lm.info",
    "bench": "nvrepro.hybrid.bench",
    "gpu-check": "nvrepro.hybrid.gpu_check",
    "export-hf": "nvrepro.core.training.hf_commands:export_main",
    "import-hf": "nvrepro.core.training.hf_commands:import_main",
    "status": "nvrepro.core.tooling.gallery",
    "build-db": "nvrepro.core.retrieval.database",
    "trust": "nvrepro.trust.cli",
}
LIGHTNING_COMMANDS = ("fit", "validate", "test", "predict")

USAGE = """usage: nvrepro {fit,validate,test,predict,reproduce,info,bench,gpu-check,export-hf,import-hf,status,build-db,trust} ...

  fit|validate|test|predict  LightningCLI: --config YAML [--config OVERLAY] [--print_config]
  reproduce                  execute the notebooks with papermill, regenerate figures/
  info                       parameter counts and cache memory of a config (meta device)
  bench                      speed ratios measured side by side (SSD, Mamba-2 mixer, decode, retrieval)
  gpu-check                  one GPU, budgeted for 8 minutes: decode vs the bandwidth floor, FP8 vs BF16, SSD kernels
  export-hf                  write a hybrid model as a transformers NemotronH directory
  import-hf                  read a transformers NemotronH directory back into nvrepro
  status                     the figure gallery and which claims held (from figures/*.json)
  build-db                   a RETRO retrieval database (chunks, faiss index, neighbours) from a corpus
  trust                      DecodingTrust's eight perspectives on a model: report.json + radar chart
"""


def lightning_cli(args: list[str] | None = None, run: bool = True):
    """The LightningCLI used by ``nvrepro fit``; any LightningModule/DataModule via class_path."""
    import lightning as L
    from lightning.pytorch.cli import LightningCLI

    return LightningCLI(
        L.LightningModule,
        L.LightningDataModule,
        subclass_mode_model=True,
        subclass_mode_data=True,
        seed_everything_default=0,
        save_config_kwargs={"overwrite": True},
        args=args,
        run=run,
    )


def _check_model_configs(argv: list[str]) -> str | None:
    """Validate the model section of each ``--config`` file up front.

    jsonargparse reports a bad value inside a nested dataclass as a long union-type trace; this
    turns the common cases (unknown key, bad pattern, widths that do not divide) into one line.
    """
    from nvrepro.core.lm.config import ConfigError, model_config_from_yaml

    paths = [argv[i + 1] for i, a in enumerate(argv[:-1]) if a == "--config"]
    paths += [a.split("=", 1)[1] for a in argv if a.startswith("--config=")]
    for path in paths:
        try:
            model_config_from_yaml(path)
        except FileNotFoundError as err:
            return str(err)
        except ConfigError as err:
            if "holds no model config" in str(err):
                continue  # an overlay (trainer settings only)
            return f"{path}: model.init_args.model.{err}"
    return None


def main(argv: list[str] | None = None) -> int:
    from_shell = argv is None
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(USAGE)
        return 0 if argv else 2
    command = argv[0]
    if command in SUBCOMMANDS:
        import importlib

        module, _, function = SUBCOMMANDS[command].partition(":")
        entry = getattr(importlib.import_module(module), function or "main")
        return int(entry(argv[1:]) or 0)
    if command in LIGHTNING_COMMANDS:
        problem = _check_model_configs(argv[1:])
        if problem:
            print(f"nvrepro {command}: {problem}", file=sys.stderr)
            return 2
        # From the shell LightningCLI reads sys.argv itself; from Python it gets the list.
        lightning_cli(None if from_shell else argv)
        return 0
    print(f"nvrepro: unknown command {command!r}; choose one of "
          f"{', '.join(LIGHTNING_COMMANDS + tuple(SUBCOMMANDS))}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
