"""Per-dataset SHA-256 digests of a results file, outside ``/meta``.

A digest covers a dataset's dtype, shape, raw bytes and attributes, so two files have equal
digests exactly where ``h5diff --exclude-path /meta`` (plus attributes) finds no difference.
``python tests/scenarios/digest.py`` re-runs the built-in scenarios and rewrites
``builtin_digests.json``: do that only in a commit that changes results on purpose, and say
why in it (the test ``test_results_unchanged.py`` guards every other commit).

The runs are made in a child process with numpy's AVX-512 kernels switched off
(:data:`PORTABLE_NUMPY`): numpy picks its exp, log, log1p and power loops by the CPU, and the
AVX-512 ones differ from the AVX2 ones in the last bit of some results (a lognormal length of
stay one ulp off reorders hefei_rush's events). With them off, x86-64 machines with and
without AVX-512 give the same bits.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import h5py
import numpy as np

HERE = Path(__file__).resolve().parent
DIGESTS = HERE / "builtin_digests.json"
#: The built-in scenarios whose results files are pinned (full runs, default seed).
SCENARIOS = ("hefei_day", "hefei_people", "hefei_rush")
#: numpy's CPU-dispatch targets to switch off for the pinned runs (numpy 2.x names; the
#: machine's AVX2 loops are used instead). Harmless where the CPU lacks them.
PORTABLE_NUMPY = "X86_V4 AVX512_ICL AVX512_SPR"


def run_portable(name, out) -> None:
    """``twin run <name> --out <out>`` in a child process with numpy's AVX-512 loops off."""
    env = dict(os.environ, NPY_DISABLE_CPU_FEATURES=PORTABLE_NUMPY, PYTHONWARNINGS="ignore::ImportWarning")
    code = "import sys; from twin.runner import run; run(sys.argv[1], out=sys.argv[2])"
    r = subprocess.run([sys.executable, "-c", code, str(name), str(out)], env=env, capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"twin run {name} failed:\n{r.stderr[-4000:]}")


def _bytes(value) -> bytes:
    a = np.asarray(value)
    if a.dtype.kind == "O":
        return "\x1f".join(str(x) for x in a.ravel()).encode()
    return a.dtype.str.encode() + repr(a.shape).encode() + a.tobytes()


def digests(path) -> dict:
    """``dataset path -> hex digest`` of every dataset outside ``/meta``, sorted by path."""
    out = {}
    with h5py.File(path, "r") as f:
        def visit(name, obj):
            if not isinstance(obj, h5py.Dataset) or name == "meta" or name.startswith("meta/"):
                return
            h = hashlib.sha256(_bytes(obj[()]))
            for key in sorted(obj.attrs):
                h.update(key.encode() + b"=" + _bytes(obj.attrs[key]))
            out["/" + name] = h.hexdigest()
        f.visititems(visit)
    return dict(sorted(out.items()))


def compare(expected: dict, found: dict) -> list:
    """Human-readable differences: datasets missing, extra or changed."""
    lines = [f"missing {k}" for k in expected if k not in found]
    lines += [f"extra {k}" for k in found if k not in expected]
    lines += [f"changed {k}" for k in expected if k in found and expected[k] != found[k]]
    return lines


def main() -> int:  # pragma: no cover - a maintenance script
    table = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in SCENARIOS:
            out = Path(tmp) / f"{name}.h5"
            run_portable(name, out)
            table[name] = digests(out)
    DIGESTS.write_text(json.dumps(table, indent=1) + "\n", encoding="utf-8")
    sys.stdout.write(f"wrote {DIGESTS}\n")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
