#!/usr/bin/env python3
"""Turns the JSON lines of one `runyard bench curve` run into a markdown
table and a plot: rate and peak RSS against job count, log scale.

    runyard bench curve --sizes 1e4,1e5,1e6 > curve.jsonl
    python3 scripts/plot_bench.py curve.jsonl                      # the table, on stdout
    python3 scripts/plot_bench.py curve.jsonl --png docs/curve.png # and the plot

A line is one (workload, job count, round). With several rounds
(`--runs 3`) a cell is the median of the rounds, and the ratio of one count
to the one below it is the median of the ratios taken within each round.

The table needs only Python 3. The plot needs matplotlib: when it cannot be
imported, the script runs itself again in the virtual environment
${XDG_CACHE_HOME:-~/.cache}/runyard/plotvenv, which it first makes and
installs matplotlib into from PyPI if need be (with --no-install it installs
nothing, and stops with exit code 3 when matplotlib is nowhere at hand).
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
from collections import defaultdict

# What each line must carry, and the workloads' names in the table.
FIELDS = ("workload", "curve_workload", "size", "run", "tasks", "tasks_per_s", "peak_rss_mb")
NO_MATPLOTLIB = 3


def die(msg, code=2):
    print(f"plot_bench: {msg}", file=sys.stderr)
    sys.exit(code)


def read_lines(paths):
    """The curve's lines from each file ('-' for standard input), checked."""
    rows = []
    for path in paths:
        f = sys.stdin if path == "-" else open(path, encoding="utf-8")
        with f:
            for no, text in enumerate(f, 1):
                if not text.strip():
                    continue
                try:
                    row = json.loads(text)
                except json.JSONDecodeError as e:
                    die(f"{path}:{no}:{e.colno}: not a JSON line: {e.msg}")
                if not isinstance(row, dict):
                    die(f"{path}:{no}: a line must be a JSON object")
                missing = [k for k in FIELDS if k not in row]
                if missing:
                    die(
                        f"{path}:{no}: no {', '.join(missing)}: "
                        "expected the lines of `runyard bench curve`"
                    )
                rows.append(row)
    if not rows:
        die("no lines read (expected the JSON lines of `runyard bench curve`)")
    return rows


def series_name(row):
    """One curve per workload, and per queue for B7."""
    name = row["workload"]
    if row.get("queue"):
        name += f" ({row['queue']})"
    return name


def group(rows):
    """{series: {size: {run: row}}}, in the order the series first appear."""
    out = {}
    for r in rows:
        out.setdefault(series_name(r), defaultdict(dict))[r["size"]][r["run"]] = r
    return out


def median_of(runs, key):
    vals = [r[key] for r in runs.values() if r.get(key) is not None]
    return statistics.median(vals) if vals else None


def ratio_medians(by_size, key):
    """For each count but the first: the median over rounds of
    value(count) / value(the count below), taken within each round."""
    sizes = sorted(by_size)
    out = {}
    for lo, hi in zip(sizes, sizes[1:]):
        rs = [
            by_size[hi][run][key] / by_size[lo][run][key]
            for run in by_size[hi]
            if run in by_size[lo]
            and by_size[hi][run].get(key)
            and by_size[lo][run].get(key)
        ]
        if rs:
            out[hi] = statistics.median(rs)
    return out


def relative(by_size):
    """Each count's rate over the smallest count's, taken within each
    round, median over rounds."""
    sizes = sorted(by_size)
    first = by_size[sizes[0]]
    out = []
    for s in sizes:
        rs = [
            r["tasks_per_s"] / first[run]["tasks_per_s"]
            for run, r in by_size[s].items()
            if run in first and first[run]["tasks_per_s"]
        ]
        out.append(statistics.median(rs) if rs else float("nan"))
    return out


def count(n):
    """10^4 for 10000; 2.5·10^5 for 250000; 100 as 100."""
    if n < 1000:
        return str(n)
    e = len(str(n)) - 1
    m = n / 10**e
    return f"10^{e}" if m == 1 else f"{m:g}·10^{e}"


def rate(x):
    if x is None:
        return "–"
    for div, unit in ((1e6, "M"), (1e3, "k")):
        if x >= div:
            return f"{x / div:.3g}{unit}/s"
    return f"{x:.3g}/s"


def table(groups):
    sizes = sorted({s for g in groups.values() for s in g})
    rounds = max(len(runs) for g in groups.values() for runs in g.values())
    head = ["workload"] + [f"{count(s)} jobs" for s in sizes]
    head += ["rate, each count / the one below", "peak RSS, each / below"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, by_size in groups.items():
        cells = [name]
        for s in sizes:
            runs = by_size.get(s)
            if not runs:
                cells.append("–")
                continue
            cell = f"{rate(median_of(runs, 'tasks_per_s'))}, {median_of(runs, 'peak_rss_mb'):.0f} MB"
            p50 = median_of(runs, "p50_latency_ms")
            if p50 is not None:
                cell += f", p50 {p50:.2g} ms"
            cells.append(cell)
        rr = ratio_medians(by_size, "tasks_per_s")
        mr = ratio_medians(by_size, "peak_rss_mb")
        cells.append(", ".join(f"{count(s)}: {rr[s]:.2f}" for s in sorted(rr)) or "–")
        cells.append(", ".join(f"{count(s)}: {mr[s]:.2f}" for s in sorted(mr)) or "–")
        lines.append("| " + " | ".join(cells) + " |")
    note = (
        f"Medians of {rounds} rounds; ratios taken within each round."
        if rounds > 1
        else "One round."
    )
    return "\n".join(lines) + "\n\n" + note + "\n"


def ensure_matplotlib(no_install):
    try:
        import matplotlib  # noqa: F401

        return
    except ImportError:
        pass
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    venv = os.path.join(cache, "runyard", "plotvenv")
    python = os.path.join(venv, "bin", "python")
    if os.path.realpath(sys.prefix) == os.path.realpath(venv):
        die(f"matplotlib cannot be imported in {venv}", NO_MATPLOTLIB)
    ok = (
        os.path.exists(python)
        and subprocess.run([python, "-c", "import matplotlib"], capture_output=True).returncode
        == 0
    )
    if not ok and no_install:
        die(
            "matplotlib cannot be imported (install it, or leave out --no-install "
            f"to have it installed into {venv})",
            NO_MATPLOTLIB,
        )
    if not os.path.exists(python):
        print(f"plot_bench: making a virtual environment at {venv}", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "venv", venv], check=True)
    if not ok:
        print("plot_bench: installing matplotlib from PyPI into it", file=sys.stderr)
        subprocess.run([python, "-m", "pip", "install", "-q", "matplotlib"], check=True)
    os.execv(python, [python, os.path.abspath(__file__)] + sys.argv[1:])


def plot(groups, path, title):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    fig, (ax_rate, ax_rel, ax_rss) = plt.subplots(1, 3, figsize=(15, 4.8))
    for name, by_size in groups.items():
        sizes = sorted(by_size)
        rates = [median_of(by_size[s], "tasks_per_s") for s in sizes]
        rss = [median_of(by_size[s], "peak_rss_mb") for s in sizes]
        ax_rate.plot(sizes, rates, marker="o", label=name)
        ax_rel.plot(sizes, relative(by_size), marker="o", label=name)
        ax_rss.plot(sizes, rss, marker="o", label=name)
    ax_rel.axhline(0.9, color="grey", linestyle="--", linewidth=1)
    ax_rel.annotate("0.9", (0.99, 0.9), xycoords=("axes fraction", "data"), color="grey",
                    va="bottom", ha="right")
    for ax, ylabel, logy in (
        (ax_rate, "jobs per second", True),
        (ax_rel, "rate / rate at the smallest count, same round", False),
        (ax_rss, "peak RSS of the bench process (MB)", True),
    ):
        ax.set_xscale("log")
        if logy:
            ax.set_yscale("log")
        ax.set_xlabel("jobs")
        ax.set_ylabel(ylabel)
        ax.grid(True, which="both", alpha=0.3)
    ax_rel.set_ylim(bottom=0)
    # Megabytes as plain numbers, not powers of ten.
    ax_rss.yaxis.set_major_locator(matplotlib.ticker.LogLocator(subs=(1.0, 2.0, 5.0)))
    ax_rss.yaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda y, _: f"{y:g}"))
    ax_rss.yaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax_rate.set_title("rate")
    ax_rel.set_title("rate, relative")
    ax_rss.set_title("peak memory")
    ax_rss.legend(fontsize="small", loc="upper left")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("lines", nargs="+", help="files of `runyard bench curve` lines ('-': stdin)")
    ap.add_argument("--png", help="write the plot to this PNG file")
    ap.add_argument("--title", help="the plot's title, e.g. the date and machine")
    ap.add_argument("--no-install", action="store_true",
                    help="do not install matplotlib when it is missing (exit code 3)")
    args = ap.parse_args()
    if args.png:
        # First: it may run this script again, in the virtual environment.
        ensure_matplotlib(args.no_install)
    groups = group(read_lines(args.lines))
    if args.png:
        plot(groups, args.png, args.title)
    sys.stdout.write(table(groups))


if __name__ == "__main__":
    main()
