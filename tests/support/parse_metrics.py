#!/usr/bin/python3
"""Parses Prometheus text (stdin) with prometheus_client's own parser and prints one
JSON object: "sample_name{k=v,...}" (labels sorted) -> value. A text the parser
refuses exits non-zero, so a test using it checks the format and the values."""
import json
import sys

from prometheus_client.parser import text_string_to_metric_families

out = {}
for family in text_string_to_metric_families(sys.stdin.read()):
    for s in family.samples:
        labels = ",".join(f"{k}={v}" for k, v in sorted(s.labels.items()))
        out[f"{s.name}{{{labels}}}"] = s.value
print(json.dumps(out))
