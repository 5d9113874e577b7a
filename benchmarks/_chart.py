"""The chart of a benchmark run (matplotlib, optional: without it there is no chart, no failure)."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def draw(result: dict[str, Any], path: Path) -> Path | None:
    """Write a PNG of the figures to ``path``; None when matplotlib is missing."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    f = result["figures"]
    fig, axes = plt.subplots(2, 3, figsize=(15, 8.5))
    blue, grey, orange, green = "#1f77b4", "#9e9e9e", "#ff7f0e", "#2ca02c"

    def label_bars(ax: Any, bars: Any, fmt: str) -> None:
        for bar in bars:
            ax.annotate(
                fmt.format(bar.get_height()),
                (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                ha="center",
                va="bottom",
                fontsize=8,
            )

    # 1 caller overhead
    ax = axes[0][0]
    co = f["caller_overhead"]
    bars = ax.bar(["no-op sink", "VLogsSink"], [co["noop_us"], co["vlogs_us"]], color=[grey, blue])
    label_bars(ax, bars, "{:.1f}")
    ax.set_title(f"1 caller: µs per logger call ({co['ratio']:.2f}x, target ≤ 1.25x)")
    ax.set_ylabel("µs / call (wall, median)")

    # 2 throughput: one group per receiver
    ax = axes[0][1]
    groups = [f[k] for k in ("throughput", "throughput_null_receiver") if k in f]
    series = [
        ("VLogsSink", "vlogs", blue),
        ("victorialogs-handler (stdlib)", "victorialogs_handler", orange),
        ("victorialogs-handler (loguru sink)", "victorialogs_handler_via_loguru", "#ffbb78"),
    ]
    width = 0.8 / (len(series) + 1)
    for k, (name, key, colour) in enumerate(series):
        xs = [g + k * width for g in range(len(groups))]
        ys = [t[key]["rps"] if t.get(key) else 0.0 for t in groups]
        label_bars(ax, ax.bar(xs, ys, width, color=colour, label=name), "{:,.0f}")
    serial = f["throughput"]["loguru_serialize_file"]
    if serial is not None:
        x = len(series) * width
        label_bars(
            ax,
            ax.bar([x], [serial["rps"]], width, color=grey, label="loguru serialize -> file"),
            "{:,.0f}",
        )
    ax.set_xticks(
        [g + width for g in range(len(groups))], [f"{t['receiver']} receiver" for t in groups]
    )
    ax.set_ylim(top=ax.get_ylim()[1] * 1.35)  # room for the legend above the bars
    ax.legend(fontsize=7, loc="upper left", ncol=2)
    ax.set_title("2 end-to-end throughput (records/s)")

    # 3 memory
    ax = axes[0][2]
    mem = f["memory"]
    bars = ax.bar(
        ["JSON line", "RSS per\nbuffered record"],
        [mem["line_bytes"], mem["rss_bytes_per_record"]],
        color=[grey, blue],
    )
    label_bars(ax, bars, "{:,.0f}")
    ax.set_title(f"3 memory, server down ({mem['ratio']:.2f}x, target ≤ 2x)")
    ax.set_ylabel("bytes")

    # 4 wire
    ax = axes[1][0]
    w = f["wire"]
    codecs = [c for c in ("gzip", "zstd", "none") if c in w]
    bars = ax.bar(
        codecs, [w[c]["bytes_per_record"] for c in codecs], color=[blue, blue, grey][: len(codecs)]
    )
    label_bars(ax, bars, "{:,.0f}")
    ax.set_title(f"4 wire bytes per record (none ÷ gzip = {w['ratio_none_over_default']:.1f}x)")
    ax.set_ylabel("bytes / record (HTTP body)")

    # 5 exit
    ax = axes[1][1]
    e = f["exit"]
    labels = [f"server up\n({e['up_receiver']})"]
    values = [e["up_overhead_ms"]]
    if "up_null_overhead_ms" in e:
        labels.append("server up\n(null)")
        values.append(e["up_null_overhead_ms"])
    labels.append(f"server down\n(timeout {e['down_shutdown_timeout_s']:g} s)")
    values.append(e["down_overhead_ms"])
    bars = ax.bar(labels, values, color=[blue] * (len(values) - 1) + [orange])
    label_bars(ax, bars, "+{:,.0f} ms")
    ax.axhline(100, color=blue, linestyle=":", linewidth=1)
    ax.axhline(1500, color=orange, linestyle=":", linewidth=1)
    ax.set_title(f"5 exit latency, {e['records']} records (+ms vs no-op sink)")

    # 7 scaling
    ax = axes[1][2]
    rows = [r for r in f["scaling"]["rows"] if not r["enqueue"]]
    threads = [r["threads"] for r in rows]
    ax.plot(threads, [r["ratio"] for r in rows], "o-", color=blue, label="VLogsSink ÷ no-op")
    control = [r.get("control_ratio") for r in rows]
    if all(c is not None for c in control):
        burn = f["scaling"].get("control_burn_us") or 0.0
        ax.plot(threads, control, "o:", color=green, label=f"control: {burn:.1f} µs spin ÷ no-op")
    enq = [r for r in f["scaling"]["rows"] if r["enqueue"]]
    if enq:
        ax.plot([1], [enq[0]["ratio"]], "s", color=orange, label="enqueue=True")
    ax.axhline(1.25, color=grey, linestyle=":", linewidth=1)
    ax.set_xscale("log", base=2)
    ax.set_xticks(threads, [str(t) for t in threads])
    ax.set_xlabel("logging threads")
    ax.set_ylabel("VLogsSink ÷ no-op (µs/call)")
    twin = ax.twinx()
    twin.plot(threads, [r["throughput_rps"] for r in rows], "^--", color=grey, label="records/s")
    twin.set_ylabel(f"records/s ({f['scaling']['receiver']} receiver)")
    twin.set_ylim(bottom=0)
    ax.set_title("7 scaling")
    ax.legend(loc="upper left", fontsize=7)
    twin.legend(loc="lower right", fontsize=7)

    m, v = result["machine"], result["versions"]
    fig.suptitle(
        f"loguru-vlogs {v['loguru_vlogs']} · {result['date'][:10]} · {m['cpu']} ({m['cores']} cores) · "
        f"Python {v['python']} · loguru {v['loguru']} · receiver: {result['receiver']['kind']}",
        fontsize=10,
    )
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path
