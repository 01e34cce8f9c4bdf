"""Prints the README's table of both comparison backends from
results/comparison.json (scripts/compare_backends.sh writes it): per
network and backend, batch 1, online and session latency on loopback, on a
switched LAN (0.2 ms round trip, 1 Gbit/s) and on the WAN, and the issue-12
targets met or not (the LAN ratio on both kinds of LAN).

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
        "| loopback online | loopback session | switched LAN online | WAN online | WAN session "
        "| issue target |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for net in networks:
        for cmp in ("ppa", "fss"):
            lan, wan = get.get((net, cmp, "lan")), get.get((net, cmp, "wan"))
            switched = get.get((net, cmp, "switched"))
            if lan is None or wan is None:
                continue
            target = []
            if cmp == "fss":
                streamed = lan["offline_bytes"] * 2 > 128 * 2**20
                if net in WAN_TARGETS:
                    rounds, secs = WAN_TARGETS[net]
                    ok = wan["online_rounds"] <= rounds and wan["online_seconds_median"] <= secs
                    target.append(f"{rounds} rounds, {secs:.2f} s WAN: {'met' if ok else 'not met'}")
                for profile, name in (("lan", "loopback"), ("switched", "switched LAN")):
                    ours, ppa = get.get((net, cmp, profile)), get.get((net, "ppa", profile))
                    if ours is None or ppa is None:
                        continue
                    ratio = ours["online_seconds_median"] / ppa["online_seconds_median"]
                    verdict = "met" if ratio <= LAN_RATIO else "**not met**"
                    note = ", streamed keys" if streamed else ""
                    target.append(f"{LAN_RATIO}x on {name}: {verdict} ({ratio:.2f}x{note})")
            bold = "**" if cmp == "fss" and net in WAN_TARGETS else ""
            print(
                f"| {net} | {cmp} | {lan['online_bytes']:,} | {lan['online_rounds']} "
                f"| {lan['offline_bytes']:,} | {ms(lan['offline_seconds'])} "
                f"| {ms(lan['online_seconds_median'])} | {ms(lan['session_seconds_median'])} "
                f"| {ms(switched['online_seconds_median']) if switched else '—'} "
                f"| {bold}{ms(wan['online_seconds_median'])}{bold} | {ms(wan['session_seconds_median'])} "
                f"| {'; '.join(target)} |"
            )

if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "results/comparison.json")
