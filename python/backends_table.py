"""Prints the README's table of both comparison backends from
results/comparison.json (scripts/compare_backends.sh writes it): per
network and backend, batch 1, online and session latency on LAN and WAN,
and the issue-12 targets met or not.

    python3 python/backends_table.py [results/comparison.json]
"""

import json
import sys

# Issue 12's WAN targets: (rounds, seconds) per network.
WAN_TARGETS = {
    "secureml-mlp": (8, 0.18),
    "minionn-mnist": (16, 0.40),
    "medical-mlp": (8, 0.15),
}
LAN_RATIO = 1.5


def ms(s):
    return f"{s * 1e3:.2f} ms" if s < 0.1 else f"{s * 1e3:.1f} ms"


def main(path):
    rows = [r for r in json.load(open(path)) if r["batch"] == 1]
    get = {(r["network"], r["comparison"], r["profile"]): r for r in rows}
    networks = list(dict.fromkeys(r["network"] for r in rows))
    print(
        "| network | backend | online bytes | rounds | dealer bytes to the client | dealer time "
        "| LAN online | LAN session | WAN online | WAN session | issue target |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for net in networks:
        for cmp in ("ppa", "fss"):
            lan, wan = get.get((net, cmp, "lan")), get.get((net, cmp, "wan"))
            if lan is None or wan is None:
                continue
            target = []
            if cmp == "fss":
                streamed = lan["offline_bytes"] * 2 > 128 * 2**20
                if net in WAN_TARGETS:
                    rounds, secs = WAN_TARGETS[net]
                    ok = wan["online_rounds"] <= rounds and wan["online_seconds_median"] <= secs
                    target.append(f"{rounds} rounds, {secs:.2f} s WAN: {'met' if ok else 'not met'}")
                ppa = get[(net, "ppa", "lan")]["online_seconds_median"]
                ratio = lan["online_seconds_median"] / ppa
                verdict = "met" if ratio <= LAN_RATIO else "**not met**"
                target.append(f"LAN {LAN_RATIO}x: {verdict} ({ratio:.2f}x{', streamed' if streamed else ''})")
            bold = "**" if cmp == "fss" and net in WAN_TARGETS else ""
            print(
                f"| {net} | {cmp} | {lan['online_bytes']:,} | {lan['online_rounds']} "
                f"| {lan['offline_bytes']:,} | {ms(lan['offline_seconds'])} "
                f"| {ms(lan['online_seconds_median'])} | {ms(lan['session_seconds_median'])} "
                f"| {bold}{ms(wan['online_seconds_median'])}{bold} | {ms(wan['session_seconds_median'])} "
                f"| {'; '.join(target)} |"
            )


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "results/comparison.json")
