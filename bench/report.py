"""Results out: the terminal table (rich), bench/results/latest.json, ratio plots (PNG) and
bench/RESULTS.md.

A result is a list of rows, one per (workload, metric): memcached's value, ours, the ratio
ours/memcached and the target the issue sets for that ratio.
"""
from __future__ import annotations

import datetime as dt
import json
import math
import os
import platform
import re
import subprocess
from dataclasses import asdict, dataclass
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
RESULTS_DIR = BENCH_DIR / "results"
LATEST_JSON = RESULTS_DIR / "latest.json"
RESULTS_MD = BENCH_DIR / "RESULTS.md"


@dataclass
class Row:
    workload: str
    metric: str            # key, e.g. "cpu_us_per_op"
    label: str             # human name, e.g. "server CPU µs/op (user+sys)"
    memcached: float
    ours: float
    ratio: float
    target: str = ""       # e.g. "≤ 1.0"; "" when the issue sets none
    met: bool | None = None
    note: str = ""


def target_met(ratio: float, target: str) -> bool | None:
    m = re.match(r"([≤≥])\s*([\d.]+)", target)
    if not m or math.isnan(ratio):
        return None
    bound = float(m.group(2))
    return ratio <= bound if m.group(1) == "≤" else ratio >= bound


def make_row(workload: str, metric: str, label: str, mc: float, ours: float,
             target: str = "", note: str = "") -> Row:
    ratio = ours / mc if mc else float("nan")
    return Row(workload, metric, label, mc, ours, ratio, target, target_met(ratio, target), note)


def machine() -> dict:
    model = ""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mem_total = 0
    try:
        with open("/proc/meminfo") as f:
            mem_total = int(f.readline().split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        mc_version = subprocess.run(["memcached", "-V"], capture_output=True, text=True,
                                    timeout=5, check=False).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        mc_version = "not installed"
    return {"cores": os.cpu_count(), "cpu_model": model, "mem_total_bytes": mem_total,
            "kernel": platform.release(), "python": platform.python_version(),
            "memcached": mc_version, "loadavg": os.getloadavg()}


def git_commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, cwd=BENCH_DIR, timeout=5, check=False).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def now_utc() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


# --- formatting -------------------------------------------------------------------------------

def fmt_value(metric: str, v: float) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "—"
    if metric in ("ops_per_sec", "items"):
        return f"{v:,.0f}"
    if metric == "peak_rss_mb":
        return f"{v:,.1f}"
    if metric == "hit_ratio":
        return f"{v:.4f}"
    if metric == "bytes_per_item":
        return f"{v:,.1f}"
    return f"{v:.3f}"


def fmt_ratio(r: float) -> str:
    return "—" if r is None or math.isnan(r) else f"{r:.3f}×"


def fmt_met(met: bool | None) -> str:
    return {True: "yes", False: "NO", None: ""}[met]


def rich_table(rows: list[Row], title: str, ours_label: str):
    from rich.table import Table
    t = Table(title=title, show_lines=False)
    for col, just in (("workload", "left"), ("metric", "left"), ("memcached", "right"),
                      (ours_label, "right"), ("ours/memcached", "right"), ("target", "center"),
                      ("met", "center")):
        t.add_column(col, justify=just)
    last = None
    for r in rows:
        if last is not None and r.workload != last:
            t.add_section()
        last = r.workload
        met = fmt_met(r.met)
        style = {"yes": "green", "NO": "bold red"}.get(met, "")
        t.add_row(r.workload, r.label, fmt_value(r.metric, r.memcached),
                  fmt_value(r.metric, r.ours), fmt_ratio(r.ratio), r.target,
                  f"[{style}]{met}[/]" if style else met)
    return t


def markdown_table(rows: list[Row], ours_label: str) -> str:
    out = [f"| workload | metric | memcached | {ours_label} | ours/memcached | target | met |",
           "|---|---|---:|---:|---:|:---:|:---:|"]
    for r in rows:
        out.append(f"| {r.workload} | {r.label} | {fmt_value(r.metric, r.memcached)} | "
                   f"{fmt_value(r.metric, r.ours)} | {fmt_ratio(r.ratio)} | {r.target} | "
                   f"{fmt_met(r.met)} |")
    return "\n".join(out)


# --- files ------------------------------------------------------------------------------------

def save_json(section: str, payload: dict) -> Path:
    """Merge `payload` under `section` in latest.json (each subcommand keeps its latest run)."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    data = {}
    if LATEST_JSON.exists():
        try:
            data = json.loads(LATEST_JSON.read_text())
        except ValueError:
            data = {}
    payload = dict(payload)
    payload["rows"] = [asdict(r) for r in payload.get("rows", [])]
    data[section] = _strict(payload)
    LATEST_JSON.write_text(json.dumps(data, indent=1, sort_keys=True, default=str,
                                      allow_nan=False) + "\n")
    return LATEST_JSON


def _strict(o):
    """NaN (a failed run's figure) becomes null: latest.json stays strict JSON."""
    if isinstance(o, float) and not math.isfinite(o):
        return None
    if isinstance(o, dict):
        return {k: _strict(v) for k, v in o.items()}
    if isinstance(o, list | tuple):
        return [_strict(v) for v in o]
    return o


def plot_ratios(rows: list[Row], prefix: str) -> list[Path]:
    """One PNG per metric: the ratio ours/memcached per workload, with 1.0 and the target."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    paths = []
    by_metric: dict[str, list[Row]] = {}
    for r in rows:
        by_metric.setdefault(r.metric, []).append(r)
    for metric, rs in by_metric.items():
        rs = [r for r in rs if not math.isnan(r.ratio)]
        if not rs:
            continue
        fig, ax = plt.subplots(figsize=(max(4.0, 1.2 * len(rs) + 2), 3.6))
        colors = ["tab:green" if r.met else "tab:red" if r.met is False else "tab:blue"
                  for r in rs]
        bars = ax.bar([r.workload for r in rs], [r.ratio for r in rs], color=colors)
        ax.bar_label(bars, labels=[f"{r.ratio:.2f}" for r in rs], fontsize=8)
        ax.axhline(1.0, color="black", linewidth=0.8)
        for tgt in sorted({r.target for r in rs if r.target}):
            m = re.search(r"[\d.]+", tgt)
            if m:
                ax.axhline(float(m.group()), color="tab:orange", linestyle="--", linewidth=1,
                           label=f"target {tgt}")
        ax.set_ylabel("ours / memcached")
        ax.set_title(rs[0].label)
        if any(r.target for r in rs):
            ax.legend(fontsize=8)
        ax.tick_params(axis="x", labelrotation=20, labelsize=8)
        fig.tight_layout()
        path = RESULTS_DIR / f"{prefix}_{metric}.png"
        fig.savefig(path, dpi=100)
        plt.close(fig)
        paths.append(path)
    return paths


def update_results_md(section: str, title: str, command: str, mach: dict, rows: list[Row],
                      ours_label: str, notes: list[str]) -> Path:
    """Replace `section` of RESULTS.md (other sections keep their latest run)."""
    begin, end = f"<!-- {section}:begin -->", f"<!-- {section}:end -->"
    body = [
        begin,
        f"## {title}",
        "",
        f"- Date: {now_utc()} (commit {git_commit() or '?'})",
        (f"- Machine: {mach['cores']} cores, {mach['cpu_model']}, "
         f"{mach['mem_total_bytes'] / 2**30:.1f} GiB, Linux {mach['kernel']}, "
         f"Python {mach['python']}, {mach['memcached']}; "
         f"load average at start {mach['loadavg'][0]:.2f}"),
        f"- Command: `{command}`",
        "",
        markdown_table(rows, ours_label),
        "",
        *[f"- {n}" for n in notes],
        end,
    ]
    text = RESULTS_MD.read_text() if RESULTS_MD.exists() else _md_header()
    if begin in text and end in text:
        pre, rest = text.split(begin, 1)
        post = rest.split(end, 1)[1]
        text = pre + "\n".join(body) + post
    else:
        text = text.rstrip("\n") + "\n\n" + "\n".join(body) + "\n"
    RESULTS_MD.write_text(text)
    return RESULTS_MD


def _md_header() -> str:
    return (
        "# Benchmark results: pycache_cluster vs memcached 1.6.18\n\n"
        "Written by `python -m bench` (`make bench`); each section keeps the latest run of its\n"
        "command. Ratios are ours / memcached from the same run. CPU per operation is the\n"
        "server process's user+sys time (/proc/<pid>/stat) over the run divided by the\n"
        "operations the load generator completed: on a 2-core machine where the load generator\n"
        "shares the CPU, it is the honest figure, where throughput is not. Medians over\n"
        "alternating rounds (memcached, ours, memcached, ours, ...), a fresh server per round.\n"
    )
