#!/usr/bin/env python3
"""Deployment apply -> module running, measured against a running spoke-edge.

    apply_latency.py --cli SPOKE --device ID --edge-pid PID --hub-dir DIR --hub HOST \
        --base FILE --work DIR [--runs 10] [--out FILE.json]

Each run applies (with `spoke deployment apply`) a manifest that adds the module `bench`, waits
until it runs, then applies the base manifest again (which removes it) and waits until it is
gone. For each apply it records:

- the wall time of the CLI call (spawn to exit);
- apply returned -> module process started: the start time of the module's process from
  /proc/PID/stat (clock ticks since boot, 10 ms resolution here) against CLOCK_BOOTTIME when
  the CLI exited (the start time is rounded down to a tick, so the process began within one
  tick after the value shown);
- apply returned -> module's first instruction: the module is `sh -c 'date +%s.%N > STAMP;
  exec sleep ...'`, so STAMP holds the wall clock (ns) at which its shell ran;
- apply returned -> `modules.bench.runtimeStatus == "running"` in the $edgeAgent reported
  properties, seen by polling GET /twins/{d}/modules/%24edgeAgent every POLL_S over one kept
  alive HTTPS connection (so this includes the report's trip through the hub, plus up to one
  poll interval);
- for removal: apply returned -> process gone (polled every PROC_POLL_S) and -> `bench` absent from
  the reported modules.

Only the standard library is used. Every wait is bounded (TIMEOUT_S); a run that times out
fails the whole measurement with exit code 1.
"""

import argparse
import base64
import hashlib
import hmac
import http.client
import json
import os
import ssl
import statistics
import subprocess
import sys
import time
import urllib.parse

POLL_S = 0.01  # twin polls (HTTPS GETs)
PROC_POLL_S = 0.001  # polls of one known PID (cheap): the removal measure
TIMEOUT_S = 30.0
API_VERSION = "2021-04-12"
MARKER = "3600.25"  # the bench module's sleep argument: unique among the edge's children
TICKS = os.sysconf("SC_CLK_TCK")


def service_token(host, key_b64, ttl_s=3600):
    """A service SAS token for policy iothubowner (Azure's format)."""
    sr = urllib.parse.quote_plus(host)
    expiry = int(time.time()) + ttl_s
    sig = hmac.new(base64.b64decode(key_b64), f"{sr}\n{expiry}".encode(), hashlib.sha256)
    sig = urllib.parse.quote(base64.b64encode(sig.digest()).decode(), safe="")
    return f"SharedAccessSignature sr={sr}&sig={sig}&se={expiry}&skn=iothubowner"


class Twin:
    """GET of the $edgeAgent twin over one kept-alive HTTPS connection."""

    def __init__(self, host, ca_file, token, device):
        self.host = host
        self.ctx = ssl.create_default_context(cafile=ca_file)
        self.token = token
        self.path = f"/twins/{device}/modules/%24edgeAgent?api-version={API_VERSION}"
        self.conn = None

    def reported(self):
        for attempt in range(2):
            try:
                if self.conn is None:
                    self.conn = http.client.HTTPSConnection(
                        self.host, 443, context=self.ctx, timeout=10)
                self.conn.request("GET", self.path, headers={"authorization": self.token})
                response = self.conn.getresponse()
                body = response.read()
                if response.status != 200:
                    raise RuntimeError(f"GET twin: HTTP {response.status}: {body[:200]!r}")
                return json.loads(body)["properties"]["reported"]
            except (OSError, http.client.HTTPException):
                self.conn = None
                if attempt == 1:
                    raise
        return None


def children(ppid):
    """{pid: (cmdline, starttime_ticks)} of the live children of ppid."""
    found = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                stat = f.read().decode()
            fields = stat[stat.rindex(")") + 2:].split()
            # fields[0] is field 3 (state); ppid is field 4, starttime field 22.
            if int(fields[1]) != ppid or fields[0] == "Z":
                continue
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmdline = f.read().replace(b"\0", b" ").decode(errors="replace")
            found[int(entry)] = (cmdline, int(fields[19]))
        except (OSError, ValueError, IndexError):
            continue
    return found


def bench_pid(edge_pid):
    for pid, (cmdline, start) in children(edge_pid).items():
        if MARKER in cmdline:
            return pid, start
    return None


def boottime():
    return time.clock_gettime(time.CLOCK_BOOTTIME)


def apply(cli, device, manifest):
    """Runs the CLI; returns (wall start, wall end, boottime end)."""
    t0 = time.time()
    done = subprocess.run([cli, "deployment", "apply", device, "--manifest", manifest],
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=TIMEOUT_S,
                          check=False)
    t1, b1 = time.time(), boottime()
    if done.returncode != 0:
        raise RuntimeError(f"spoke deployment apply failed: {done.stderr.decode()}")
    return t0, t1, b1


def wait(what, condition, interval=POLL_S):
    deadline = time.monotonic() + TIMEOUT_S
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(interval)


def running(reported):
    module = (reported.get("modules") or {}).get("bench") or {}
    return module.get("runtimeStatus") == "running"


def settled_without_bench(twin, edge_pid):
    """Waits until the base deployment is back: no bench process, none reported."""
    wait("bench gone", lambda: bench_pid(edge_pid) is None)
    wait("bench unreported", lambda: "bench" not in (twin.reported().get("modules") or {}))


def one_run(args, twin, with_bench, stamp):
    if os.path.exists(stamp):
        os.unlink(stamp)
    settled_without_bench(twin, args.edge_pid)
    time.sleep(args.pause)
    row = {}
    # Add the module.
    t0, t1, b1 = apply(args.cli, args.device, with_bench)
    row["add_cli_s"] = t1 - t0
    pid, start_ticks = wait("bench process", lambda: bench_pid(args.edge_pid))
    row["add_proc_start_s"] = start_ticks / TICKS - b1
    twin_seen = wait("reported running", lambda: running(twin.reported()) and time.time())
    row["add_reported_s"] = twin_seen - t1

    def stamped():
        try:
            with open(stamp) as f:
                text = f.read().strip()
            return float(text) if text else None
        except (OSError, ValueError):
            return None

    row["add_first_instr_s"] = wait("stamp", stamped) - t1
    time.sleep(args.pause)
    # Remove it again.
    t0, t1, _ = apply(args.cli, args.device, args.base)
    row["remove_cli_s"] = t1 - t0
    wait("bench process gone",
         lambda: not os.path.exists(f"/proc/{pid}") or _zombie(pid), PROC_POLL_S)
    row["remove_proc_gone_s"] = time.time() - t1
    wait("bench unreported",
         lambda: "bench" not in (twin.reported().get("modules") or {}))
    row["remove_reported_s"] = time.time() - t1
    return row


def _zombie(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
        return stat[stat.rindex(")") + 2] == "Z"
    except OSError:
        return True


def summary(values):
    ms = sorted(v * 1000 for v in values)
    return {"min": ms[0], "median": statistics.median(ms), "max": ms[-1]}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cli", required=True)
    parser.add_argument("--device", required=True)
    parser.add_argument("--edge-pid", type=int, required=True)
    parser.add_argument("--hub-dir", required=True)
    parser.add_argument("--hub", required=True, help="hub host (the connection string's)")
    parser.add_argument("--base", required=True, help="manifest without the bench module")
    parser.add_argument("--work", required=True, help="directory for generated files")
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--pause", type=float, default=1.0,
                        help="seconds of quiet before each apply")
    parser.add_argument("--out")
    args = parser.parse_args()

    with open(os.path.join(args.hub_dir, "service.connstr")) as f:
        parts = dict(p.split("=", 1) for p in f.read().strip().split(";") if p)
    token = service_token(parts["HostName"], parts["SharedAccessKey"])
    twin = Twin(args.hub, os.path.join(args.hub_dir, "ca.pem"), token, args.device)

    stamp = os.path.join(args.work, "bench.stamp")
    with open(args.base) as f:
        manifest = json.load(f)
    agent = manifest["modulesContent"]["$edgeAgent"]["properties.desired"]
    agent["modules"]["bench"] = {
        "version": "1.0", "type": "process", "status": "running", "restartPolicy": "always",
        "settings": {"command": ["/bin/sh", "-c",
                                 f"date +%s.%N > {stamp}; exec /bin/sleep {MARKER}"]},
    }
    with_bench = os.path.join(args.work, "manifest-with-bench.json")
    with open(with_bench, "w") as f:
        json.dump(manifest, f)

    rows = []
    for i in range(args.runs):
        row = one_run(args, twin, with_bench, stamp)
        rows.append(row)
        print(f"[apply-latency] run {i + 1}/{args.runs}: "
              + " ".join(f"{k}={v * 1000:.1f}ms" for k, v in row.items()), file=sys.stderr)
    result = {"runs": rows, "summary": {k: summary([r[k] for r in rows]) for k in rows[0]},
              "clock_ticks_per_s": TICKS, "poll_interval_s": POLL_S,
              "proc_poll_interval_s": PROC_POLL_S}
    text = json.dumps(result, indent=1)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text)
    print(text)


if __name__ == "__main__":
    try:
        main()
    except (RuntimeError, subprocess.TimeoutExpired, OSError) as e:
        print(f"[apply-latency] error: {e}", file=sys.stderr)
        sys.exit(1)
