#!/usr/bin/env python3
"""testbed_procs.py: the Ombra processes of the netns testbed.

What it is for: deploy/testbed/ombra-testbed builds the network (one network
namespace per region, a bridge in a "wan" namespace, NFQUEUE delays) and
runs this helper inside the wan namespace to start, watch and stop the
daemons.  Everything about the processes (metad configs, command lines,
pid files, logs, health waits, endpoint summaries) is deploy/ombra-local's
code, loaded as a module; this file only says where the regions live:

  region i (name from testbed.json) -> address 10.77.<i>.1, namespace
  <name>-<region>; each daemon is started with `ip netns exec NS DAEMON...`
  (ip execs the daemon in place, so the pid file holds the daemon's pid).

Commands (argv[1]): up/status/down/kill/start take ombra-local's options
and the testbed's DIR; `restart PROC` stops (TERM) and starts one process;
`env REGION` prints shell assignments for a client in REGION; `netdelay-bin`
prints the path of ombra-netdelay.

How it fails: like ombra-local (one line starting with "ombra-testbed:",
exit 1; usage errors exit 2).  A DIR without testbed.json is an error that
says to run `ombra-testbed up`.

Python 3 standard library only."""

import importlib.machinery
import importlib.util
import json
import os
import sys

HERE = os.path.dirname(os.path.realpath(__file__))
STATE_FILE = "testbed.json"
WAN_HOST = "10.77.0.254"


def load_ombra_local():
    """deploy/ombra-local as a module (it is a script without .py)."""
    path = os.path.join(HERE, "..", "ombra-local")
    loader = importlib.machinery.SourceFileLoader("ombra_local", path)
    spec = importlib.util.spec_from_loader("ombra_local", loader)
    mod = importlib.util.module_from_spec(spec)
    loader.exec_module(mod)
    return mod


ol = load_ombra_local()
ol.BINARIES["ombra-netdelay"] = os.path.join("tools", "netdelay")


def region_host(i):
    """Address of region i (1-based) on the testbed's WAN."""
    return "10.77.%d.1" % i


class TestbedLayout(ol.Layout):
    """ombra-local's layout with each region in its own namespace and
    address (same port numbers as ombra-local; each region has its own
    address, so they never collide)."""

    def __init__(self, root, state):
        self.state = state
        self.names = state["regions"]
        super().__init__(root, len(self.names), state["base_port"], False,
                         state["fast_size"], state["slow_size"])

    def region_name(self, i):
        return self.names[i - 1]

    def host(self, i):
        return region_host(i)

    def command(self, p, argv):
        return ["ip", "netns", "exec", self.state["netns"][p.region], *argv]

    def port_free(self, p, port):
        # The region's namespace is private to this testbed: nothing else
        # can hold its ports.
        return True

    def summary(self):
        s = super().summary()
        s["testbed"] = {
            "name": self.state["name"],
            "wan_netns": self.state["wan_netns"],
            "wan_address": WAN_HOST,
            "regions": [{"name": r, "netns": self.state["netns"][r],
                         "address": region_host(i), "subnet": "10.77.%d.0/24" % i}
                        for i, r in enumerate(self.names, 1)],
            "delays_ms": self.state["delays_ms"],
        }
        # `ombra-testbed status --json` passes the network's state:
        # "region:namespace_up:partitioned:netdelay_pid ..."
        for item in os.environ.get("OMBRA_TESTBED_NET", "").split():
            name, up, part, pid = item.split(":")
            for r in s["testbed"]["regions"]:
                if r["name"] == name:
                    r.update(namespace_up=up == "1", partitioned=part == "1",
                             netdelay_pid=int(pid) if pid else None)
        return s


def load_state(root):
    path = os.path.join(os.path.abspath(root), STATE_FILE)
    try:
        with open(path) as f:
            return json.load(f)
    except FileNotFoundError:
        raise ol.LocalError("%s holds no testbed (no %s); run `ombra-testbed up --dir %s`"
                            % (root, STATE_FILE, root))
    except (OSError, ValueError) as e:
        raise ol.LocalError("%s is unreadable (%s)" % (path, e))


def cmd_env(args):
    """Shell assignments describing REGION's endpoints for a client."""
    layout = args.layout
    if args.region not in layout.names:
        raise ol.LocalError("no region '%s'; regions: %s"
                            % (args.region, " ".join(layout.names)))
    i = layout.names.index(args.region) + 1
    proxy = [p for p in layout.of("proxy") if p.region_index == i][0]
    print("OMBRA_ENDPOINTS=%s" % layout.metad_endpoints())
    print("OMBRA_REGION=%s" % args.region)
    print("OMBRA_PROXY=%s" % proxy.addr["grpc"])
    print("OMBRA_NBD=%s" % proxy.addr["nbd"])
    return 0


def cmd_restart(args):
    layout = args.layout
    p = layout.find(args.proc)
    ol.say("%s: %s" % (p.name, ol.stop_procs([p])[p.name]))
    return ol.cmd_start(args)


def main(argv):
    sys.argv[0] = "ombra-testbed"
    if argv[:1] == ["netdelay-bin"]:
        try:
            print(ol.find_bin("ombra-netdelay", argv[1] if len(argv) > 1 else None))
            return 0
        except ol.LocalError as e:
            ol.say("ombra-testbed: %s" % e)
            return 1
    p = ol.parser()
    sub = [a for a in p._actions if a.dest == "command"][0]
    rs = sub.add_parser("restart")
    rs.add_argument("--dir", required=True)
    rs.add_argument("--bin-dir")
    rs.add_argument("--json", action="store_true")
    rs.add_argument("--timeout", type=float, default=ol.UP_TIMEOUT_S)
    rs.add_argument("proc")
    rs.set_defaults(fn=cmd_restart)
    ev = sub.add_parser("env")
    ev.add_argument("--dir", required=True)
    ev.add_argument("region")
    ev.set_defaults(fn=cmd_env)
    args = p.parse_args(argv)
    try:
        args.layout = TestbedLayout(args.dir, load_state(args.dir))
        return args.fn(args)
    except ol.LocalError as e:
        ol.say("ombra-testbed: %s" % e)
        return 1
    except KeyboardInterrupt:
        ol.say("ombra-testbed: interrupted")
        return 1
    except BrokenPipeError:  # stdout closed early (| head)
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
