"""
What if the north ED had fewer beds?
====================================

Load the built-in ``hefei_day`` scenario, shorten it to half a day, and ask what cutting the
``north-ed`` emergency department from 16 to 2 beds does to hospital blocking and response
times (its ambulances queue at a full ED with their patients): both variants run on the *same* random streams (common random numbers), so the paired
difference isolates the change. Then draw the response times of one pair of runs.

Run it with ``python scenarios/gallery_beds_what_if.py``; it writes
``beds_what_if.png`` in the current folder (set ``TWIN_GALLERY_OUT`` to write elsewhere).
"""

# %%
# Load the scenario and make it small: twelve hours, light traffic.
import os
from pathlib import Path

from twin.ensemble import compare
from twin.runner import load_scenario, run

base = load_scenario("hefei_day", overrides=["run.until_s=43200", "traffic.random_trips=2000",
                                             "traffic.window_start_s=0"])
fewer_beds = ["hospitals.north-ed.beds=2"]

# %%
# Compare the two on common random numbers (replications on the same seeds).
cmp = compare(base, base, overrides_b=fewer_beds, replications=3, seed=1)
diff = cmp.difference
for kpi, scale, unit in (("blocking", 100.0, "pp"), ("response_mean_s", 1 / 60.0, "min")):
    row = diff.loc[kpi]
    print(f"{kpi:<18} B - A = {row['mean'] * scale:+.1f} {unit} (95 % interval +/- {row['half_width'] * scale:.1f})")

# %%
# One pair of runs: the distribution of response times (share of calls answered within x).
import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

a, b = run(base, seed=1), run(base, overrides=fewer_beds, seed=1)
fig, ax = plt.subplots(figsize=(6, 3.5))
for res, label in ((a, "16 beds"), (b, "2 beds")):
    rt = np.sort(res.ems.calls["response_s"].dropna().to_numpy() / 60.0)
    ax.step(rt, np.arange(1, len(rt) + 1) / len(rt), where="post", label=f"north-ed {label}")
ax.axvline(8.0, color="grey", lw=0.8, ls="--")
ax.set_xscale("log")
ax.set_xlabel("response time (min, log scale; dashed: 8-min target)")
ax.set_ylabel("share of calls answered")
ax.set_title("hefei_day, 00:00-12:00: response times")
ax.legend()
fig.tight_layout()
out = Path(os.environ.get("TWIN_GALLERY_OUT", ".")) / "beds_what_if.png"
fig.savefig(out, dpi=100)
print(f"wrote {out}")
