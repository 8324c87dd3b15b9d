#!/usr/bin/env python3
"""Writes the compose file of `make compose-test` from the shipped one
(compose/docker-compose.yml), so the test runs what users run, never a second
hand-kept copy. What it changes, and why:

- every service on the host's network (network_mode: host) and nothing published:
  tests send traffic only to this machine's loopback, and Docker's bridge would
  put the containers on a private-range network;
- so every address becomes 127.0.0.1 with a port of the test's own (free ports
  below the kernel's ephemeral range, given on the command line), in the
  environment, the commands and the health checks;
- the workers share the host's PID namespace: on the host's network they share
  its host name too, and a worker's default name is <hostname>-<pid>;
- the mock agent takes --mock-delay-ms so that work is still in flight when the
  test kills the broker;
- images, volumes and the build context get names and paths of the test's own,
  so a user's stack and its data are never touched.

Usage: compose_hostnet.py SHIPPED ROOT PREFIX CLIENTS WORKERS EVENTS METRICS HTTP DELAY_MS
"""
import re
import sys

import yaml


def main(argv):
    if len(argv) != 10:
        sys.exit(__doc__.split("Usage: ")[1])
    shipped, root, prefix = argv[1], argv[2], argv[3]
    clients, workers, events, metrics, http, delay = argv[4:10]
    with open(shipped) as f:
        doc = yaml.safe_load(f)
    ports = {"5555": clients, "5556": workers, "5557": events, "9137": metrics, "8137": http}

    address = re.compile(r"\b(0\.0\.0\.0|broker|127\.0\.0\.1):(%s)\b" % "|".join(ports))

    def local(text):
        return address.sub(lambda m: "127.0.0.1:" + ports[m.group(2)], text)

    for name, service in doc["services"].items():
        service["network_mode"] = "host"
        service.pop("ports", None)
        image = service.get("image", "")
        service["image"] = prefix + "-" + image.split(":")[0] + ":test"
        if "build" in service:
            service["build"]["context"] = root
            service["build"]["network"] = "host"
        env = service.get("environment", {})
        for key, value in list(env.items()):
            if isinstance(value, str):
                env[key] = local(value)
        if isinstance(service.get("command"), list):
            service["command"] = [local(arg) for arg in service["command"]]
        check = service.get("healthcheck", {})
        if isinstance(check.get("test"), list):
            check["test"] = [local(arg) for arg in check["test"]]
        service["volumes"] = [prefix + "-" + v for v in service.get("volumes", [])]
        if name.startswith("worker"):
            service["pid"] = "host"
        if name == "worker":
            service["command"] += ["--mock-delay-ms", delay]
    for key in [k for k in doc if k.startswith("x-")]:  # anchors, resolved above
        del doc[key]
    doc["volumes"] = {prefix + "-" + name: {"name": prefix + "-" + name}
                      for name in doc.get("volumes", {})}
    yaml.safe_dump(doc, sys.stdout, default_flow_style=False, sort_keys=False)


if __name__ == "__main__":
    main(sys.argv)
