"""Exercises of notebooks/hybrid/02_why_hybrid.ipynb."""

from __future__ import annotations

import math
from typing import Callable


from nvrepro.core.tooling.verdicts import Check
from nvrepro.core.tooling.verdicts import report as _report


# === notebooks/hybrid/02_why_hybrid.ipynb =================================================

# --- (a) whose recall drops first as the pairs grow? ----------------------------------------

def check_recall_drop(answer: str | None, result: dict | None = None, *, verbose: bool = True) -> Check:
    """Exercise (a): which arm's recall should fall first as key-value pairs grow at a fixed
    length: ``"transformer"``, ``"mamba2"`` or ``"hybrid"``?

    The reference is the memory each arm can consult when a query arrives, computed from the
    arms' YAMLs: a pure Mamba-2 model has only its fixed-size states; the others also keep every
    past key and value in their attention layers. With ``result`` (from ``mqar_recall``), the
    message also says what this run measured at its longest length.
    """
    from nvrepro.core.lm.info import kv_cache_bytes, ssm_state_bytes
    from nvrepro.hybrid.why_hybrid import ARMS, arm_configs

    if answer is None:
        return _report(Check(None, f"set `answer` to one of {ARMS}."), verbose)
    if answer not in ARMS:
        return _report(Check(False, f"expected one of {ARMS}, got {answer!r}."), verbose)
    cfgs = arm_configs("mqar")
    length = result["lengths"][-1] if result else 128
    floats = {arm: (ssm_state_bytes(c, conv_bytes=4, ssm_bytes=4) + kv_cache_bytes(c, length, bytes_per_elem=4)) // 4
              for arm, c in cfgs.items()}
    why = (f"to answer a query at position {length} a pure Mamba-2 model can only read its "
           f"{floats['mamba2']:,} state numbers, the same for 1 pair or 1,000, into which every pair had to be "
           f"compressed as it streamed past; the Transformer keeps all {length} keys and values of each attention "
           f"layer ({floats['transformer']:,} numbers) and the hybrid's single attention layer does too "
           f"(plus its Mamba states: {floats['hybrid']:,}), so both can look a pair up exactly. As the pairs "
           "grow the fixed state is the first to run out (Zoology, arXiv:2312.04927, Sec. 4; Waleffe et al. "
           "2024, Sec. 3).")
    if result:
        last = {arm: r["accuracy"][length][-1] for arm, r in result["arms"].items()
                if r["accuracy"][length][-1] is not None}
        worst = min(last, key=last.get)
        measured = ", ".join(f"{a} {v:.2f}" for a, v in last.items())
        why += (f" This run, at {result['pairs'][-1]} pairs and length {length}: {measured} "
                f"(lowest: {worst}" + ("; at this training budget the run does not separate the arms yet)."
                                       if worst != "mamba2" else ", as predicted)."))
    return _report(Check(answer == "mamba2", why), verbose)


# --- (b) the attention fraction of a pattern ------------------------------------------------

def _fraction_cases() -> dict[str, str]:
    """Patterns to test on: the full-scale configs, the toy arms, and a pure Mamba-2 stack."""
    from nvrepro.core.lm.config import model_config_from_yaml
    from nvrepro.core.tooling.paths import CONFIGS_DIR
    from nvrepro.hybrid.why_hybrid import arm_configs

    cases = {name: model_config_from_yaml(CONFIGS_DIR / "hybrid" / f"{name}.yaml").pattern
             for name in ("nemotron_h_8b", "nemotron_h_56b", "nemotron_h_47b", "llama_3_1_8b")}
    cases.update({f"toy {arm}": cfg.pattern for arm, cfg in arm_configs().items()})
    cases["MMMM"] = "MMMM"
    return cases


def check_attention_fraction_fn(student_fn: Callable[[str], float], *, verbose: bool = True) -> Check:
    """Exercise (b): ``student_fn(pattern) -> float``, the share of *all* layers that are attention.

    Checked on the real configs' patterns against ``pattern.count('*') / len(pattern)``.
    """
    from nvrepro.core.tooling.verdicts import call_student

    cases = _fraction_cases()
    for name, pattern in cases.items():
        got, verdict = call_student(student_fn, pattern, name="attention_fraction")
        if verdict is not None:
            return _report(verdict, verbose)
        want = pattern.count("*") / len(pattern)
        try:
            value = float(got)
        except (TypeError, ValueError):
            return _report(Check(False, f"on {name} expected a number, got {got!r}."), verbose)
        if math.isclose(value, want, abs_tol=1e-9):
            continue
        mixers = pattern.count("*") + pattern.count("M")
        hint = ""
        if math.isclose(value, 100 * want, abs_tol=1e-6):
            hint = " (that is a percentage; return a fraction in [0, 1])"
        elif mixers and math.isclose(value, pattern.count("*") / mixers, abs_tol=1e-9):
            hint = (" (that is the share among the sequence mixers M and *; the FFN layers '-' are layers "
                    "too, and the paper's 8% counts all of them)")
        return _report(Check(False, f"on {name} ({len(pattern)} layers) you return {value:.4f}, expected "
                             f"{pattern.count('*')}/{len(pattern)} = {want:.4f}{hint}."), verbose)
    shares = "; ".join(f"{name} {p.count('*')} of {len(p)} ({100 * p.count('*') / len(p):.1f}%)"
                       for name, p in cases.items() if "M" in p and "*" in p)
    return _report(Check(True, f"right on every pattern. Attention layers among all layers: {shares}."), verbose)


# --- (c) the equal-parameter FFN width ------------------------------------------------------

def _width_cases():
    """``(name, cfg, target)``: the toy Transformer arm matched to the toy hybrid, and two more."""
    import dataclasses

    from nvrepro.core.lm.config import ModelConfig
    from nvrepro.core.lm.info import count_parameters
    from nvrepro.hybrid.why_hybrid import arm_configs

    arms = arm_configs()
    target = count_parameters(arms["hybrid"])[0]
    swiglu = ModelConfig(pattern="*-*-*-", d_model=48, vocab_size=100,
                         attention=dict(n_heads=4, n_kv_heads=4, head_dim=12), ffn=dict(hidden=64, activation="swiglu"))
    wide = dataclasses.replace(arms["transformer"], pattern="*-*--")
    return [("toy Transformer arm, target = toy hybrid", arms["transformer"], target),
            ("a SwiGLU Transformer", swiglu, 250_000),
            ("a pattern with 3 FFN layers", wide, target)]


def check_ffn_width_fn(student_fn: Callable, *, verbose: bool = True) -> Check:
    """Exercise (c): ``student_fn(cfg, target_params) -> int``, the FFN width (a multiple of 8) that
    brings ``cfg``'s parameter count closest to ``target_params``.

    Checked by counting (``count_parameters`` on the meta device) at the answer and at its two
    neighbours, answer +- 8: none of them may be closer to the target.
    """
    import dataclasses

    from nvrepro.core.tooling.verdicts import call_student
    from nvrepro.core.lm.info import count_parameters

    def params(cfg, width):
        return count_parameters(dataclasses.replace(cfg, ffn=dataclasses.replace(cfg.ffn, hidden=width)))[0]

    for name, cfg, target in _width_cases():
        got, verdict = call_student(student_fn, cfg, target, name="ffn_width")
        if verdict is not None:
            return _report(verdict, verbose)
        if not isinstance(got, int) or isinstance(got, bool) or got <= 0 or got % 8:
            return _report(Check(False, f"on {name}: expected a positive int multiple of 8, got {got!r}."), verbose)
        gaps = {w: abs(params(cfg, w) - target) for w in (got - 8, got, got + 8) if w > 0}
        best = min(gaps, key=gaps.get)
        if gaps[best] < gaps[got]:
            n_ffn, d = cfg.count("-"), cfg.d_model
            mats = 3 if cfg.ffn.activation == "swiglu" else 2
            hint = (f"; each unit of width adds {mats} x d_model = {mats * d} parameters per FFN layer "
                    f"({'gate, up and down' if mats == 3 else 'up and down'} projections), times {n_ffn} FFN layers")
            return _report(Check(False, f"on {name}: width {got} gives {params(cfg, got):,} parameters, "
                                 f"{gaps[got]:,} from the target {target:,}; width {best} is closer "
                                 f"({gaps[best]:,} away){hint}."), verbose)
    return _report(Check(True, "closest multiple of 8 on every case: the count is affine in the width, "
                         "P(f) = P(0) + f * n_ffn * m * d_model (m = 2 for squared ReLU, 3 for SwiGLU), so "
                         "f = (target - P(0)) / (n_ffn * m * d_model), rounded."), verbose)
