"""Scaling by config only: 2-process DDP on CPU (gloo) through the CLI and the ddp overlay."""

import json
import os
import pathlib
import subprocess
import sys
import textwrap

import torch
from nvrepro.core.tooling.paths import REPO_ROOT

ROOT = REPO_ROOT

CALLBACK = textwrap.dedent('''
    import pathlib
    import lightning as L
    import torch

    class SaveReplica(L.Callback):
        """Each rank writes its final weights and a fingerprint of the first batch it saw."""

        def __init__(self, out_dir: str):
            self.out_dir = pathlib.Path(out_dir)
            self.first_batch = None

        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
            if self.first_batch is None:
                self.first_batch = batch["input_ids"].clone()

        def on_train_end(self, trainer, pl_module):
            state = {k: v.detach().cpu().clone() for k, v in pl_module.state_dict().items()}
            torch.save({"state": state, "first_batch": self.first_batch, "world": trainer.world_size},
                       self.out_dir / f"rank{trainer.global_rank}.pt")
''')


def test_two_process_ddp_keeps_replicas_identical(tmp_path):
    (tmp_path / "replica_cb.py").write_text(CALLBACK)
    callback = {"class_path": "replica_cb.SaveReplica", "init_args": {"out_dir": str(tmp_path)}}
    cmd = [
        sys.executable, "-m", "nvrepro.cli", "fit",
        "--config", str(ROOT / "configs/hybrid/toy_hybrid.yaml"),
        "--config", str(ROOT / "configs/scale/ddp.yaml"),
        "--trainer.accelerator", "cpu", "--trainer.devices", "2", "--trainer.max_steps", "3",
        "--trainer.limit_val_batches", "0", "--trainer.logger", "false",
        "--trainer.enable_progress_bar", "false", "--trainer.default_root_dir", str(tmp_path),
        f"--trainer.callbacks+={json.dumps(callback)}",
        "--data.init_args.max_documents", "40", "--data.init_args.seq_len", "64",
        "--data.init_args.batch_size", "4",
    ]
    env = {**os.environ, "PYTHONPATH": f"{tmp_path}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
           "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]

    r0 = torch.load(tmp_path / "rank0.pt", weights_only=True)
    r1 = torch.load(tmp_path / "rank1.pt", weights_only=True)
    assert r0["world"] == r1["world"] == 2
    # The ranks trained on different shards of the data ...
    assert not torch.equal(r0["first_batch"], r1["first_batch"])
    # ... yet gradient all-reduce kept every parameter bit-identical.
    assert r0["state"].keys() == r1["state"].keys()
    for name in r0["state"]:
        assert torch.equal(r0["state"][name], r1["state"][name]), name
