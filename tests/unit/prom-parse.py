#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-or-later
# prom-parse.py: parse Prometheus text exposition from stdin with
# prometheus_client's parser (Debian's python3-prometheus-client) and print
# one JSON object: {"families": [{"name", "type", "help", "samples":
# [{"name", "labels", "value"}]}]}.  Exit 2 when the text does not parse,
# 77 when prometheus_client is missing.  Used by test-spmetrics.
import json
import math
import sys

try:
    from prometheus_client.parser import text_string_to_metric_families
except ImportError as e:
    print(f"prom-parse: {e}", file=sys.stderr)
    sys.exit(77)


def value(v):
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "+Inf" if v > 0 else "-Inf"
    return v


def main():
    text = sys.stdin.buffer.read().decode("utf-8")
    out = []
    try:
        for fam in text_string_to_metric_families(text):
            out.append({
                "name": fam.name, "type": fam.type, "help": fam.documentation,
                "samples": [{"name": s.name, "labels": s.labels, "value": value(s.value)}
                            for s in fam.samples],
            })
    except Exception as e:  # the parser raises ValueError and others
        print(f"prom-parse: {type(e).__name__}: {e}", file=sys.stderr)
        sys.exit(2)
    json.dump({"families": out}, sys.stdout)
    sys.stdout.write("\n")


main()
