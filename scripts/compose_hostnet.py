#!/usr/bin/env python3
"""Writes the compose file of `make compose-test` from the shipped one
(compose/docker-compose.yml), and the test's copy of each env file it is given
(compose/ha.env), so the test runs what users run, never a second hand-kept
copy. What it changes, and why:

- every service on the host's network (network_mode: host) and nothing published:
  tests send traffic only to this machine's loopback, and Docker's bridge would
  put the containers on a private-range network;
- so every address becomes 127.0.0.1 with a port of the test's own, one per
  service and port it stands for: a service's own listener (0.0.0.0:5555 or
  127.0.0.1:9137 in its environment, command or health check) and the other
  services' references to it (broker-standby:5555, @postgres/ in a PostgreSQL
  URI) get the same one. The two brokers, one host name each in the shipped
  file, share the host's loopback here, so each gets ports of its own. Ports
  are free when chosen and below the kernel's ephemeral range (a port in it
  could be taken as the source port of an outgoing connection meanwhile);
- PostgreSQL listens on 127.0.0.1 only (its start script passes its arguments
  to the server), at its port by PGPORT, which its health check and psql read too;
- the workers share the host's PID namespace: on the host's network they share
  its host name too, and a worker's default name is <hostname>-<pid>;
- the mock agent takes --mock-delay-ms so that work is still in flight when the
  test kills the broker;
- images, volumes and the build context get names and paths of the test's own,
  so a user's stack and its data are never touched.

Writes OUT/docker-compose.yml, OUT/<name> for each ENV_FILE, and OUT/ports: one
shell assignment per port, port_<service>_<port>=<test's port> (service names
with _ for -), e.g. port_gateway_8137.

Usage: compose_hostnet.py SHIPPED ROOT PREFIX DELAY_MS OUT [ENV_FILE...]
"""
import copy
import os
import random
import re
import socket
import sys

import yaml

POSTGRES_PORT = "5432"  # a postgresql:// URI without a port means this one


class Ports:
    """The test's loopback port for each (service, port), chosen when first asked."""

    def __init__(self):
        self.low = int(open("/proc/sys/net/ipv4/ip_local_port_range").read().split()[0])
        self.chosen = {}

    def __call__(self, service, port):
        key = (service, port)
        if key not in self.chosen:
            taken = set(self.chosen.values())
            while True:
                candidate = str(random.randrange(20000, self.low))
                if candidate in taken:
                    continue
                try:
                    with socket.socket() as s:
                        s.bind(("127.0.0.1", int(candidate)))
                except OSError:
                    continue
                self.chosen[key] = candidate
                break
        return self.chosen[key]


def localizer(names, ports):
    """A function rewriting the addresses of a text written for service `own`."""
    hosts = "|".join(re.escape(n) for n in sorted(names, key=len, reverse=True))
    address = re.compile(r"(?<![\w.-])(0\.0\.0\.0|127\.0\.0\.1|%s):(\d+)\b" % hosts)
    uri = re.compile(r"(postgresql://[^@/\s]*@)(%s)(?::(\d+))?(?=/)" % hosts)

    def local(text, own):
        # addresses first: what they make (127.0.0.1:port) is no URI host to map again
        text = address.sub(lambda m: "127.0.0.1:" + ports(
            own if m.group(1) in ("0.0.0.0", "127.0.0.1") else m.group(1), m.group(2)), text)
        return uri.sub(lambda m: "%s127.0.0.1:%s" % (
            m.group(1), ports(m.group(2), m.group(3) or POSTGRES_PORT)), text)
    return local


def main(argv):
    if len(argv) < 6:
        sys.exit(__doc__.split("Usage: ")[1])
    shipped, root, prefix, delay, out = argv[1:6]
    with open(shipped) as f:
        doc = yaml.safe_load(f)
    ports = Ports()
    local = localizer(doc["services"], ports)

    for name in list(doc["services"]):
        # YAML anchors may share one mapping between services: each gets its own
        service = doc["services"][name] = copy.deepcopy(doc["services"][name])
        service["network_mode"] = "host"
        service.pop("ports", None)
        image = service.get("image", "")
        service["image"] = prefix + "-" + image.split(":")[0] + ":test"
        if "build" in service:
            service["build"]["context"] = root
            service["build"]["network"] = "host"
        env = service.setdefault("environment", {})
        for key, value in list(env.items()):
            if isinstance(value, str):
                env[key] = local(value, name)
        if isinstance(service.get("command"), list):
            service["command"] = [local(arg, name) for arg in service["command"]]
        check = service.get("healthcheck", {})
        if isinstance(check.get("test"), list):
            check["test"] = [local(arg, name) for arg in check["test"]]
        service["volumes"] = [prefix + "-" + v for v in service.get("volumes", [])]
        if name == "postgres":
            env["PGPORT"] = ports(name, POSTGRES_PORT)
            service["command"] = ["postgres-start.sh", "-c", "listen_addresses=127.0.0.1"]
        if name.startswith("worker"):
            service["pid"] = "host"
        if name == "worker":
            service["command"] += ["--mock-delay-ms", delay]
        if not env:
            del service["environment"]
    for key in [k for k in doc if k.startswith("x-")]:  # anchors, resolved above
        del doc[key]
    doc["volumes"] = {prefix + "-" + name: {"name": prefix + "-" + name}
                      for name in doc.get("volumes", {})}
    with open(os.path.join(out, "docker-compose.yml"), "w") as f:
        yaml.safe_dump(doc, f, default_flow_style=False, sort_keys=False)

    # env files: KEY=VALUE lines read by Compose for the whole file (no own service)
    for path in argv[6:]:
        with open(path) as f:
            lines = [line if line.lstrip().startswith("#") else local(line, None)
                     for line in f]
        with open(os.path.join(out, os.path.basename(path)), "w") as f:
            f.writelines(lines)
    with open(os.path.join(out, "ports"), "w") as f:
        for (service, port), chosen in sorted(ports.chosen.items()):
            f.write("port_%s_%s=%s\n" % (service.replace("-", "_"), port, chosen))


if __name__ == "__main__":
    main(sys.argv)
