"""Whether ``torch.compile`` works on this machine (on a CPU it needs a C++ compiler).

Every compiled path of the package (decode steppers, static decoding, compiled training layers)
asks here first and falls back to eager code, with a warning, where the answer is no.
"""

from __future__ import annotations

import functools

import torch


@functools.cache
def compile_available() -> tuple[bool, str]:
    """Whether ``torch.compile`` works here (on CPU it needs a C++ compiler), and why not.

    Tried once per process on a two-op function; ``(True, "")`` or ``(False, reason)``.
    """
    try:
        fn = torch.compile(lambda x: torch.relu(x) * 2, fullgraph=True, dynamic=False)
        fn(torch.ones(2))
    except Exception as err:  # any backend failure means: fall back to eager steps
        return False, f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"
    return True, ""
