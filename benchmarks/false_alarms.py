"""Do correct initializers pass?  Every framework, every scheme, 20 seeds, N = 10^7.

`make calibrate` runs this: the initcheck commands below, each with seeds
0..19, at the default N and alpha, and counts rows that are not PASS/SKIP.
A correct implementation fails a command with probability at most alpha
(1e-6), so any FAIL here is either a real bug in a framework or a false alarm
in initcheck; both are worth a look.  It takes several minutes on 2 cores.

    .venv/bin/python benchmarks/false_alarms.py [--seeds 20] [--samples 1e7]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

COMMANDS = [
    ["xavier", "--dist", "normal,uniform", "--fan-in", "784", "--fan-out", "256"],
    ["kaiming", "--dist", "normal,uniform", "--shape", "128,64,3,3", "--nonlinearity", "relu"],
    ["lecun", "--dist", "normal,uniform,truncated-normal", "--fan-in", "512", "--fan-out", "512"],
    ["trunc-normal", "--std", "0.02", "--low", "-0.04", "--high", "0.04"],
    ["orthogonal", "--shape", "256,784", "--shape", "128,64,3,3"],
    ["sparse", "--sparsity", "0.9", "--shape", "256,784"],
    ["eye"],
    ["dirac", "--groups", "2"],
    ["delta-orthogonal"],
    ["constant", "--value", "0.3"],
]
#: Real framework bugs the README's "What it has found" documents, as
#: (framework, API prefix, the one check that fails): reported apart, never
#: counted as false alarms; a row that fails anything else still counts.
KNOWN_BUGS = [
    # keras/src/backend/torch/random.py keeps a value beyond two stddevs when
    # none of its four normals is inside: every truncated normal's bounds
    ("keras-torch", "keras.initializers.", "support"),
]
#: The structured schemes' commands (``--structured`` runs only these).
STRUCTURED = COMMANDS[4:]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--samples", default="1e7")
    parser.add_argument("--structured", action="store_true", help="only the structured schemes' commands")
    args = parser.parse_args()
    initcheck = str(Path(sys.executable).with_name("initcheck"))
    verdicts: Counter = Counter()
    failures = []
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as folder:
        for command in STRUCTURED if args.structured else COMMANDS:
            for seed in range(args.seeds):
                report = Path(folder) / "report.json"
                line = [initcheck, *command, "-n", args.samples, "--seed", str(seed), "-q", "--no-progress",
                        "--json", str(report)]
                done = subprocess.run(line, capture_output=True, text=True)
                if done.returncode not in (0, 1):
                    print(f"error {done.returncode}: {' '.join(line)}\n{done.stderr}", file=sys.stderr)
                    return 2
                for row in json.loads(report.read_text())["rows"]:
                    failed = {check["name"] for check in row["checks"] if not check["passed"]}
                    if row["verdict"] == "FAIL" and any(
                            row["framework"] == framework and row["api"].startswith(api) and failed == {check}
                            for framework, api, check in KNOWN_BUGS):
                        verdicts["FAIL (a known framework bug)"] += 1
                        continue
                    verdicts[row["verdict"]] += 1
                    if row["verdict"] in ("FAIL", "WARN"):
                        failures.append((seed, row["framework"], row["api"], row["verdict"], row["reason"]))
            print(f"{' '.join(command)}: done ({time.perf_counter() - started:.0f} s)", flush=True)
    print(f"\nrows: {dict(verdicts)}")
    for failure in failures:
        print("  seed {}: {} {} {}: {}".format(*failure))
    return 1 if any(f[3] == "FAIL" for f in failures) else 0


if __name__ == "__main__":
    sys.exit(main())
