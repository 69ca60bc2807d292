#!/usr/bin/env python3
"""`make bench`: the provider's costs, side by side, in one run.

1. plan over 500 and 5,000 `cmk_kms_key_policy` data sources against as many
   built-in `terraform_data` (with plugin TLS, as Terraform runs providers);
   goals: <= 1.2x at 500, <= 1.05x at 5,000.
2. plan with refresh of 1,000 `cmk_key_configuration` and 100
   `cmk_workspace_binding` against cmk-sandbox limited to 15 requests/s (the
   provider at its default client limit, 15/s, OAuth M2M): Account API
   requests counted by the sandbox (goal <= 10) and time against a plan with
   refresh of 1,100 `terraform_data` (goal <= 1.5x).
3. the provider's peak RSS during (2) (goal < 30 MB).
4. apply of 500 key configurations against the sandbox limited to 50
   requests/s (the provider's `rate_limit = 50`), against the least time the
   limit allows (500 / 50 = 10 s); goal <= 1.25x with zero failures.
5. `review` over plans of 1,000 and 10,000 resources, and `review DIR` (HCL mode) over configurations of as many (bench/review_bench.sh);
   goal: linear, under 2 s at 10,000.
6. apply of 100 `cmk_kms_key` (alias, tags, rotation) against moto's KMS
   behind the lagging proxy (`examples/kms_lag_proxy.rs`: reads show each
   write 2 s late), against the least time the lag allows (two lags per key,
   10 keys at a time: 100 / 10 x 2 x 2 s = 40 s); KMS requests counted by the
   proxy; goal <= 1.5x, no failure, 0 orphaned keys (keys in KMS that the
   state does not hold).

Timed series alternate round by round (cmk, built-in, cmk, ...) so that
background load hits both alike; each figure is a median. Prints as it goes
and writes BENCHMARKS.md with the machine, its load, and the figures against
the goals. A benchmark, not a test: it asserts nothing, but it says when a
run failed.

Usage: bench/bench.py BIN_DIR [--out BENCHMARKS.md] [--quick]
"""

import argparse
import datetime
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

ACCOUNT_ID = "7f3c9a52-1d4e-4b8a-9c61-2e5f8d0a4b13"
CLIENT_ID = "bench-sp"
CLIENT_SECRET = "bench-oauth-secret"
ADMIN = "bench-admin"
KEY_ARN = "arn:aws:kms:us-east-1:123456789012:key/11111111-2222-3333-4444-555555555555"
WS_BASE = 4_000_000_000_000_000
HEADER = """terraform {
  required_providers {
    cmk = { source = "databricks-cmk/cmk" }
  }
}
"""

log_lines = []


def say(s=""):
    print(s, flush=True)
    log_lines.append(s)


def median(xs):
    return statistics.median(xs)


class Bench:
    def __init__(self, bin_dir, work, terraform):
        self.bin_dir = bin_dir
        self.work = work
        self.terraform = terraform
        self.providers = os.path.join(work, "providers")
        os.makedirs(self.providers)
        # A private copy: its path tells our provider processes apart.
        self.provider = os.path.join(self.providers, "terraform-provider-cmk")
        shutil.copy2(os.path.join(bin_dir, "terraform-provider-cmk"), self.provider)
        self.cli = os.path.join(work, "cli.tfrc")
        with open(self.cli, "w") as f:
            f.write(
                'provider_installation {\n  dev_overrides { "databricks-cmk/cmk" = "%s" }\n  direct {}\n}\n'
                % self.providers
            )
        env = {k: v for k, v in os.environ.items() if not k.startswith(("TF_", "AWS_", "DATABRICKS_"))}
        env.update(TF_CLI_CONFIG_FILE=self.cli, CHECKPOINT_DISABLE="1", TF_IN_AUTOMATION="1")
        self.env = env

    def dir(self, name, main_tf):
        d = os.path.join(self.work, name)
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, "main.tf"), "w") as f:
            f.write(main_tf)
        return d

    def tf(self, d, *args, env=None):
        """Runs terraform; returns (seconds, exit code, output)."""
        e = dict(self.env)
        e.update(env or {})
        t0 = time.perf_counter()
        p = subprocess.run(
            [self.terraform, "-chdir=" + d, *args, "-input=false", "-no-color"],
            env=e,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        return time.perf_counter() - t0, p.returncode, p.stdout

    def must(self, d, *args, env=None):
        t, code, out = self.tf(d, *args, env=env)
        if code not in (0, 2) or (code == 2 and "-detailed-exitcode" not in args):
            sys.exit("terraform %s failed in %s:\n%s" % (" ".join(args), d, out[-4000:]))
        return t, out

    def provider_pids(self):
        pids = []
        for name in os.listdir("/proc"):
            if name.isdigit():
                try:
                    if os.readlink("/proc/%s/exe" % name) == self.provider:
                        pids.append(int(name))
                except OSError:
                    pass
        return pids


class Sandbox:
    def __init__(self, bin_dir, work, seed, extra=()):
        self.seed_path = os.path.join(work, "seed-%d.json" % id(self))
        with open(self.seed_path, "w") as f:
            json.dump(seed, f)
        self.p = subprocess.Popen(
            [os.path.join(bin_dir, "cmk-sandbox"), "--listen", "127.0.0.1:0", "--seed", self.seed_path, *extra],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        line = self.p.stdout.readline().strip()
        if not line.startswith("listening on "):
            sys.exit("cmk-sandbox did not start: %r" % line)
        self.url = line[len("listening on "):]

    def admin(self, method, path, body=None):
        req = urllib.request.Request(
            self.url + path,
            method=method,
            data=json.dumps(body).encode() if body is not None else None,
            headers={"Authorization": "Bearer " + ADMIN, "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(req) as r:
            text = r.read().decode()
            return json.loads(text) if text else None

    def stats(self):
        return self.admin("GET", "/_sandbox/stats")

    def stop(self):
        self.p.terminate()
        self.p.wait()


def seed(workspaces=0, keys=0):
    return {
        "admin_token": ADMIN,
        "accounts": [{
            "account_id": ACCOUNT_ID,
            "tokens": [],
            "oauth_clients": [{"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET}],
            "customer_managed_keys": [
                {"use_cases": ["MANAGED_SERVICES"], "aws_key_info": {"key_arn": KEY_ARN}} for _ in range(keys)
            ],
            "workspaces": [{
                "workspace_id": WS_BASE + i, "workspace_name": "ws-%d" % i, "deployment_name": "ws-%d" % i,
                "aws_region": "us-east-1", "pricing_tier": "ENTERPRISE", "compute_mode": "HYBRID",
                "storage_mode": "CUSTOMER_HOSTED", "workspace_status": "RUNNING",
                "classic_compute_running": False,
            } for i in range(workspaces)],
        }],
    }


def provider_block(url, rate_limit=None):
    rl = "  rate_limit = %s\n" % rate_limit if rate_limit else ""
    return (
        'provider "cmk" {\n  host = "%s"\n  account_id = "%s"\n'
        '  workspace_host_template = "%s/_ws/{deployment_name}"\n'
        "  workspace_poll_interval_seconds = 0.1\n%s}\n" % (url, ACCOUNT_ID, url, rl)
    )


OAUTH_ENV = {"DATABRICKS_CLIENT_ID": CLIENT_ID, "DATABRICKS_CLIENT_SECRET": CLIENT_SECRET}


def fig1(b, sizes, rounds):
    say("## 1. plan: cmk_kms_key_policy against terraform_data (plugin TLS on)")
    out = {}
    for n in sizes:
        cmk = b.dir("policy-%d" % n, HEADER + (
            'data "cmk_kms_key_policy" "p" {\n  count = %d\n  use_cases = ["MANAGED_SERVICES", "STORAGE"]\n'
            '  aws_account_id = format("%%012d", count.index)\n}\n' % n))
        builtin = b.dir("data-%d" % n, 'resource "terraform_data" "d" {\n  count = %d\n  input = format("%%012d", count.index)\n}\n' % n)
        b.must(cmk, "plan", "-lock=false")  # warm-up
        b.must(builtin, "plan", "-lock=false")
        cs, bs = [], []
        for r in range(rounds):
            c, _ = b.must(cmk, "plan", "-lock=false")
            t, _ = b.must(builtin, "plan", "-lock=false")
            cs.append(c)
            bs.append(t)
            say("  %d: round %d: cmk %.2fs, terraform_data %.2fs" % (n, r + 1, c, t))
        mc, mb = median(cs), median(bs)
        out[n] = (mc, mb, mc / mb)
        say("  %d: median cmk %.2fs, terraform_data %.2fs, ratio %.2fx" % (n, mc, mb, mc / mb))
    return out


def fig23(b, rounds, keys=1000, bindings=100):
    say("## 2./3. plan with refresh of %d key configurations and %d bindings, sandbox at 15 requests/s" % (keys, bindings))
    sb = Sandbox(b.bin_dir, b.work, seed(workspaces=bindings), ["--provisioning-delay-ms", "50", "--admin-token", ADMIN])
    try:
        body = (
            'resource "cmk_key_configuration" "k" {\n  count = %d\n  use_cases = ["MANAGED_SERVICES"]\n'
            '  aws_key_info = { key_arn = "%s" }\n}\n'
            'resource "cmk_workspace_binding" "b" {\n  count = %d\n  workspace_id = %d + count.index\n'
            "  managed_services_key = cmk_key_configuration.k[count.index]\n}\n" % (keys, KEY_ARN, bindings, WS_BASE)
        )
        cmk = b.dir("estate", HEADER + provider_block(sb.url, 1000) + body)
        t, _ = b.must(cmk, "apply", "-auto-approve", env=OAUTH_ENV)
        say("  set-up: applied %d key configurations and %d bindings in %.1fs (no limit)" % (keys, bindings, t))
        # Measured: the provider's default client limit, the sandbox at 15/s.
        with open(os.path.join(cmk, "main.tf"), "w") as f:
            f.write(HEADER + provider_block(sb.url) + body)
        sb.admin("PUT", "/_sandbox/faults", {"rps_limit": 15})
        n = keys + bindings
        builtin = b.dir("data-state-%d" % n, 'resource "terraform_data" "d" {\n  count = %d\n  input = format("%%012d", count.index)\n}\n' % n)
        b.must(builtin, "apply", "-auto-approve")
        b.must(builtin, "plan")  # warm-up
        time.sleep(1.1)  # a fresh one-second window at the sandbox
        cs, bs, reqs, toks = [], [], [], []
        for r in range(rounds):
            s0 = sb.stats()
            c, out = b.must(cmk, "plan", "-detailed-exitcode", env=OAUTH_ENV)
            s1 = sb.stats()
            if "No changes." not in out:
                sys.exit("the re-plan of the estate is not empty:\n" + out[-3000:])
            t, _ = b.must(builtin, "plan")
            req = s1["api_requests"] - s0["api_requests"]
            tok = s1["tokens_issued"] - s0["tokens_issued"]
            cs.append(c)
            bs.append(t)
            reqs.append(req)
            toks.append(tok)
            say("  round %d: cmk %.2fs (%d Account API requests, %d of them OAuth tokens), terraform_data x%d %.2fs"
                % (r + 1, c, req, tok, n, t))
            time.sleep(1.1)
        mc, mb = median(cs), median(bs)
        say("  median cmk %.2fs, terraform_data %.2fs, ratio %.2fx; requests per plan: %s" % (mc, mb, mc / mb, sorted(set(reqs))))

        # 3. Peak RSS of every provider process of one more plan, sampled.
        peak = {}
        done = threading.Event()

        def sample():
            while not done.is_set():
                for pid in b.provider_pids():
                    try:
                        with open("/proc/%d/status" % pid) as f:
                            for line in f:
                                if line.startswith("VmHWM:"):
                                    peak[pid] = max(peak.get(pid, 0), int(line.split()[1]))
                    except OSError:
                        pass
                time.sleep(0.01)

        th = threading.Thread(target=sample)
        th.start()
        b.must(cmk, "plan", "-detailed-exitcode", env=OAUTH_ENV)
        done.set()
        th.join()
        peak_mb = max(peak.values()) / 1024 if peak else float("nan")
        say("  peak RSS (VmHWM) of the provider processes of one plan: %s MB (largest %.1f MB)"
            % (", ".join("%.1f" % (v / 1024) for v in sorted(peak.values())), peak_mb))
        return {"cmk": mc, "builtin": mb, "ratio": mc / mb, "requests": reqs, "tokens": toks, "peak_mb": peak_mb,
                "processes": len(peak)}
    finally:
        sb.stop()


def fig4(b, rounds, keys=500, rps=50):
    say("## 4. apply of %d key configurations, sandbox limited to %d requests/s, provider rate_limit = %d" % (keys, rps, rps))
    least = keys / rps
    times, failures = [], []
    body = 'resource "cmk_key_configuration" "k" {\n  count = %d\n  use_cases = ["MANAGED_SERVICES"]\n  aws_key_info = { key_arn = "%s" }\n}\n' % (keys, KEY_ARN)
    for r in range(rounds):
        sb = Sandbox(b.bin_dir, b.work, seed(), ["--rps-limit", str(rps), "--admin-token", ADMIN])
        try:
            d = b.dir("apply-%d" % r, HEADER + provider_block(sb.url, rps) + body)
            t, code, out = b.tf(d, "apply", "-auto-approve", env=OAUTH_ENV)
            st = sb.stats()
            ok = code == 0 and st["creates_committed"] == keys
            failures.append(0 if ok else 1)
            times.append(t)
            say("  round %d: %.2fs (%.2fx of %.0fs), exit %d, %d configurations created, %d requests"
                % (r + 1, t, t / least, least, code, st["creates_committed"], st["api_requests"]))
            if not ok:
                say("  FAILED:\n" + out[-2000:])
        finally:
            sb.stop()
    m = median(times)
    say("  median %.2fs = %.2fx of the least time the limit allows (%.0fs); failed rounds: %d" % (m, m / least, least, sum(failures)))
    return {"median": m, "least": least, "ratio": m / least, "failures": sum(failures), "rounds": rounds}


def fig5(b, rounds):
    say("## 5. review over plans of 1,000 and 10,000 resources")
    here = os.path.dirname(os.path.abspath(__file__))
    p = subprocess.run([os.path.join(here, "review_bench.sh"), b.bin_dir, str(rounds), "1000", "10000"],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    for line in p.stdout.splitlines():
        say("  " + line)
    if p.returncode != 0:
        sys.exit("review_bench.sh failed")
    shares = {}
    for with_vars in (True, False):
        c = corpus_share(b.bin_dir, with_vars)
        shares[with_vars] = c
        say("  review in HCL mode on the evaluation corpus (%s): %d of %d checks decided (%.1f%%%s), %d need state (not counted), %.2fs in all" % (
            "variables given" if with_vars else "without variables",
            c["decided"], c["total"], c["share"], "; goal 95%" if with_vars else "",
            c["needs_state"], c["wall"]))
        for line in c["lines"]:
            say(line)
    rows = {"corpus": shares}
    for line in p.stdout.splitlines():
        f = line.split()
        if len(f) == 4 and f[0].isdigit():
            rows[int(f[0])] = (float(f[2]), float(f[3]))
        # HCL mode (review DIR): "hcl N MiB wall cpu"
        if len(f) == 5 and f[0] == "hcl" and f[1].isdigit():
            rows[("hcl", int(f[1]))] = (float(f[3]), float(f[4]))
    return rows


def corpus_share(bin_dir, with_vars=True):
    """The share of checks review decides in HCL mode on the evaluation
    corpus (acceptance-tests/fixtures/review/eval), each configuration with
    its variables given (its expected.json) or without any, beside the
    time. Findings that need state (a plan or --live) are not checks the
    configuration alone can decide: left out of the share (counted apart)."""
    here = os.path.dirname(os.path.abspath(__file__))
    corpus = os.path.join(here, "..", "acceptance-tests", "fixtures", "review", "eval")
    decided = total = needs_state = 0
    wall = 0.0
    lines = []
    for name in sorted(os.listdir(corpus)):
        d = os.path.join(corpus, name)
        exp = os.path.join(d, "expected.json")
        if not os.path.isfile(exp):
            continue
        with open(exp) as f:
            want = json.load(f)
        args = [os.path.join(bin_dir, "terraform-provider-cmk"), "review", d, "--format", "json", "--fail-on", "never"]
        for k, v in sorted(want.get("vars", {}).items() if with_vars else []):
            args += ["-var", "%s=%s" % (k, v)]
        t0 = time.time()
        p = subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        dt = time.time() - t0
        wall += dt
        if want.get("terraform_refuses") is True:
            # Terraform refuses it (a duplicate declaration): review must
            # too, exit 2; it has no checks to count.
            if p.returncode != 2:
                sys.exit("review %s: Terraform refuses it, review exited %d: %s" % (name, p.returncode, p.stderr[-500:]))
            lines.append("  %-28s refused, as Terraform refuses it (exit 2); %.3fs" % (name, dt))
            continue
        if p.returncode != 0:
            sys.exit("review %s failed (%d): %s" % (name, p.returncode, p.stderr[-500:]))
        s = json.loads(p.stdout)["summary"]
        checks = s["passed"] + s["errors"] + s["warnings"] + s["cannot_tell"] + s.get("suppressed", 0)
        lines.append("  %-28s %3d of %3d decided, %d cannot tell yet, %d need state; %.3fs" % (
            name, checks - s["cannot_tell"], checks, s["cannot_tell"], s.get("needs_state", 0), dt))
        decided += checks - s["cannot_tell"]
        total += checks
        needs_state += s.get("needs_state", 0)
    share = 100.0 * decided / total if total else 0.0
    return {"decided": decided, "total": total, "share": share, "wall": wall, "lines": lines,
            "needs_state": needs_state}


def fig6(b, rounds, keys=100, lag_ms=2000, parallelism=10):
    say("## 6. apply of %d cmk_kms_key through a KMS whose reads lag writes by %d ms" % (keys, lag_ms))
    venv = os.environ.get("CMK_VENV") or os.path.join(os.getcwd(), ".venv")
    moto_bin = os.path.join(venv, "bin", "moto_server")
    proxy_bin = os.path.join(b.bin_dir, "examples", "kms_lag_proxy")
    for p in (moto_bin, proxy_bin):
        if not os.path.exists(p):
            sys.exit("%s is missing (make venv; cargo build --release --examples)" % p)
    least = keys / parallelism * 2 * lag_ms / 1000.0
    times, results = [], []
    body = ('resource "cmk_kms_key" "k" {\n  count = %d\n  use_cases = ["MANAGED_SERVICES", "STORAGE"]\n'
            '  alias = "alias/bench-${count.index}"\n  tags = { bench = "lag", team = "data" }\n'
            '  enable_key_rotation = true\n  deletion_protection = false\n}\n' % keys)
    for r in range(rounds):
        import socket
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()
        moto = subprocess.Popen([moto_bin, "-H", "127.0.0.1", "-p", str(port)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        proxy = None
        try:
            moto_url = "http://127.0.0.1:%d" % port
            for _ in range(600):
                try:
                    urllib.request.urlopen(moto_url + "/moto-api/data.json", timeout=2).read()
                    break
                except OSError:
                    time.sleep(0.1)
            proxy = subprocess.Popen([proxy_bin, moto_url, str(lag_ms)], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True)
            line = proxy.stdout.readline().strip()
            if not line.startswith("listening on "):
                sys.exit("kms_lag_proxy did not start: %r" % line)
            proxy_url = line.split()[-1]
            aws = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_REGION": "us-east-1",
                   "AWS_ENDPOINT_URL_STS": moto_url, "AWS_EC2_METADATA_DISABLED": "true"}
            prov = 'provider "cmk" {\n  aws_region = "us-east-1"\n  kms_endpoint = "%s"\n}\n' % proxy_url
            d = b.dir("kms-lag-%d" % r, HEADER + prov + body)
            t, code, out = b.tf(d, "apply", "-auto-approve", "-parallelism=%d" % parallelism, env=aws)
            stats = json.loads(urllib.request.urlopen(proxy_url + "/_proxy/stats", timeout=10).read())
            # Every key KMS holds, page by page (ListKeys answers at most
            # 100 at a time by default: one page would hide orphans).
            held, marker = 0, None
            while True:
                ask = {"Limit": 1000}
                if marker:
                    ask["Marker"] = marker
                req = urllib.request.Request(moto_url + "/", data=json.dumps(ask).encode(), method="POST", headers={
                    "X-Amz-Target": "TrentService.ListKeys", "Content-Type": "application/x-amz-json-1.1",
                    "Authorization": "AWS4-HMAC-SHA256 Credential=testing/20240101/us-east-1/kms/aws4_request, SignedHeaders=host, Signature=x"})
                page = json.loads(urllib.request.urlopen(req, timeout=10).read())
                held += len(page.get("Keys", []))
                marker = page.get("NextMarker") if page.get("Truncated") else None
                if not marker:
                    break
            # (`state list` takes no -input flag: not through b.tf.)
            listed = subprocess.run([b.terraform, "-chdir=" + d, "state", "list"], env=b.env,
                                    stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True).stdout
            in_state = sum(1 for l in listed.splitlines() if l.startswith("cmk_kms_key.k["))
            orphans = held - in_state
            ok = code == 0 and in_state == keys and orphans == 0
            times.append(t)
            results.append({"ok": ok, "requests": stats["total"], "stale": stats.get("stale", 0),
                            "held": held, "orphans": orphans})
            say("  round %d: %.2fs (%.2fx of %.0fs), exit %d, %d keys in state, %d in KMS, %d orphans, "
                "%d KMS requests (%d answered stale)"
                % (r + 1, t, t / least, least, code, in_state, held, orphans, stats["total"], stats.get("stale", 0)))
            if not ok:
                say("  FAILED:\n" + out[-3000:])
        finally:
            if proxy:
                proxy.stdin.close()
                proxy.wait(timeout=30)
            moto.kill()
            moto.wait()
    m = median(times)
    say("  median %.2fs = %.2fx of the least time the lag allows (%.0fs)" % (m, m / least, least))
    return {"median": m, "least": least, "ratio": m / least, "rounds": rounds,
            "failures": sum(1 for x in results if not x["ok"]),
            "requests": int(median([x["requests"] for x in results])),
            "orphans": max(x["orphans"] for x in results)}


def machine():
    cpu = "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mem = ""
    try:
        with open("/proc/meminfo") as f:
            mem = "%.1f GiB" % (int(f.readline().split()[1]) / 1048576)
    except OSError:
        pass
    return cpu, os.cpu_count(), mem


def loadavg():
    try:
        with open("/proc/loadavg") as f:
            return " ".join(f.read().split()[:3])
    except OSError:
        return "unknown"


def busiest():
    """The processes using the most CPU right now (what else was running)."""
    try:
        out = subprocess.run(["ps", "-eo", "pcpu,comm", "--sort=-pcpu"], stdout=subprocess.PIPE, text=True).stdout
        return [" ".join(l.split()) for l in out.splitlines()[1:6]]
    except OSError:
        return []


def verdict(ok):
    return "met" if ok else "**not met**"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("bin_dir")
    ap.add_argument("--out", default="BENCHMARKS.md")
    ap.add_argument("--quick", action="store_true", help="fewer rounds and sizes (a smoke run)")
    ap.add_argument("--only", default="", help="figures to run, e.g. 2,4 (a partial run writes no file)")
    ap.add_argument("--corpus-share", action="store_true",
                    help="print only the share of checks review decides on the evaluation corpus")
    a = ap.parse_args()
    bin_dir = os.path.abspath(a.bin_dir)
    if a.corpus_share:
        for with_vars in (True, False):
            c = corpus_share(bin_dir, with_vars)
            print("%s:" % ("variables given" if with_vars else "without variables"))
            for line in c["lines"]:
                print(line)
            print("%d of %d checks decided (%.1f%%), %d need state (not counted), %.2fs" % (
                c["decided"], c["total"], c["share"], c["needs_state"], c["wall"]))
        return
    terraform = os.environ.get("TERRAFORM", "terraform")
    if shutil.which(terraform) is None:
        sys.exit("terraform is not installed (need 1.11+)")
    tf_version = subprocess.run([terraform, "version", "-json"], stdout=subprocess.PIPE, text=True,
                                env=dict(os.environ, CHECKPOINT_DISABLE="1", TF_CLI_CONFIG_FILE="/dev/null")).stdout
    tf_version = json.loads(tf_version).get("terraform_version", "?")
    version = subprocess.run([os.path.join(bin_dir, "terraform-provider-cmk"), "--version"],
                             stdout=subprocess.PIPE, text=True).stdout.strip()
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], stdout=subprocess.PIPE, text=True).stdout.strip()
    cpu, cores, mem = machine()
    started = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    load_start, busy_start = loadavg(), busiest()
    say("machine: %s, %s cores, %s; %s %s; terraform %s; %s (%s)" % (
        cpu, cores, mem, platform.system(), platform.release(), tf_version, version, commit))
    say("load average at start: %s" % load_start)

    quick = a.quick
    work = tempfile.mkdtemp(prefix="cmk-bench-")
    try:
        b = Bench(bin_dir, work, terraform)
        only = {int(x) for x in a.only.split(",") if x.strip()}
        run = lambda n: not only or n in only or (n == 3 and 2 in only)
        f1 = fig1(b, [500] if quick else [500, 5000], 3 if quick else 5) if run(1) else {}
        f23 = fig23(b, 3 if quick else 5, *((100, 10) if quick else (1000, 100))) if run(2) else None
        f4 = fig4(b, 1 if quick else 3, *((100, 50) if quick else (500, 50))) if run(4) else None
        f5 = fig5(b, 3 if quick else 5) if run(5) else {}
        f6 = fig6(b, 1) if run(6) else None
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if only:
        return
    load_end = loadavg()
    say("load average at end: %s" % load_end)

    r500 = f1.get(500)
    r5000 = f1.get(5000)
    req_max = max(f23["requests"])
    lines = [
        "# Benchmarks",
        "",
        "Written by `make bench` (`bench/bench.py`); every figure is a median over",
        "rounds that alternate the compared runs. Figures from one machine and one",
        "run; compare ratios, not seconds, across machines.",
        "",
        "## Machine and run",
        "",
        "| | |",
        "|---|---|",
        "| when | %s |" % started,
        "| CPU | %s, %s cores |" % (cpu, cores),
        "| memory | %s |" % mem,
        "| system | %s %s |" % (platform.system(), platform.release()),
        "| Terraform | %s |" % tf_version,
        "| provider | %s (commit %s) |" % (version, commit),
        "| command | `%s` (`%s`) |" % (os.environ.get("CMK_BENCH_COMMAND", "python3 bench/bench.py"),
                                      " ".join(["bench/bench.py"] + [os.path.relpath(x) if os.path.isabs(x) else x for x in sys.argv[1:]])),
        "| load average (1, 5, 15 min) | %s at start, %s at end |" % (load_start, load_end),
        "| busiest processes at start | %s |" % ("; ".join(busy_start) or "unknown"),
        "",
        "## Figures against the goals",
        "",
        "| # | what | measured | goal | |",
        "|---|---|---|---|---|",
    ]
    if r500:
        lines.append("| 1 | plan, 500 `cmk_kms_key_policy` / 500 `terraform_data` (plugin TLS on) | %.2fs / %.2fs = **%.2fx** | <= 1.2x | %s |"
                     % (r500[0], r500[1], r500[2], verdict(r500[2] <= 1.2)))
    if r5000:
        lines.append("| 1 | plan, 5,000 `cmk_kms_key_policy` / 5,000 `terraform_data` | %.2fs / %.2fs = **%.2fx** | <= 1.05x | %s |"
                     % (r5000[0], r5000[1], r5000[2], verdict(r5000[2] <= 1.05)))
    lines.append("| 2 | Account API requests of a plan with refresh of 1,000 `cmk_key_configuration` and 100 `cmk_workspace_binding` (sandbox at 15 requests/s, OAuth M2M) | **%d** (OAuth token requests included: %d) | <= 10 | %s |"
                 % (req_max, max(f23["tokens"]), verdict(req_max <= 10)))
    lines.append("| 2 | that plan / plan with refresh of 1,100 `terraform_data` | %.2fs / %.2fs = **%.2fx** | <= 1.5x | %s |"
                 % (f23["cmk"], f23["builtin"], f23["ratio"], verdict(f23["ratio"] <= 1.5)))
    lines.append("| 3 | peak RSS of the provider during that plan (largest of its %d processes) | **%.1f MB** | < 30 MB | %s |"
                 % (f23["processes"], f23["peak_mb"], verdict(f23["peak_mb"] < 30)))
    lines.append("| 4 | apply of 500 key configurations, sandbox limited to 50 requests/s (`rate_limit = 50`) / least time the limit allows | %.2fs / %.0fs = **%.2fx**, failed rounds: %d of %d | <= 1.25x, zero failures | %s |"
                 % (f4["median"], f4["least"], f4["ratio"], f4["failures"], f4["rounds"],
                    verdict(f4["ratio"] <= 1.25 and f4["failures"] == 0)))
    if 1000 in f5 and 10000 in f5:
        w1, w10 = f5[1000][0], f5[10000][0]
        c1, c10 = f5[1000][1], f5[10000][1]
        lin = c10 / c1 if c1 > 0 else float("nan")
        lines.append("| 5 | `review`, 1,000 and 10,000 resources (wall; CPU) | %.2fs and **%.2fs**; CPU %.2fs and %.2fs (x%.1f for 10x the resources) | under 2 s at 10,000, linear | %s |"
                     % (w1, w10, c1, c10, lin, verdict(w10 < 2.0)))
    if ("hcl", 10000) in f5:
        hw, hc = f5[("hcl", 10000)]
        lines.append("| 5 | `review DIR` (HCL mode, no plan), 10,000 resources (wall; CPU) | **%.2fs**; CPU %.2fs | under 2 s | %s |"
                     % (hw, hc, verdict(hw < 2.0)))
    corpus = f5.get("corpus", {})
    if True in corpus:
        c = corpus[True]
        lines.append("| 5 | checks `review DIR` decides on the evaluation corpus (acceptance-tests/fixtures/review/eval, %d configurations), variables given; \"needs state\" (%d) not counted | %d of %d = **%.1f%%** (%.2fs in all) | >= 95%% | %s |"
                     % (len(c["lines"]), c["needs_state"], c["decided"], c["total"], c["share"], c["wall"], verdict(c["share"] >= 95.0)))
    if False in corpus:
        c = corpus[False]
        lines.append("| 5 | the same without variables (what the configuration alone decides); \"needs state\" (%d) not counted | %d of %d = **%.1f%%** (%.2fs in all) | none (for comparison) | |"
                     % (c["needs_state"], c["decided"], c["total"], c["share"], c["wall"]))
    lines.append("| 6 | apply of 100 `cmk_kms_key` (alias, tags, rotation) through a KMS whose reads lag writes by 2 s / least time the lag allows | %.2fs / %.0fs = **%.2fx**, %d KMS requests, orphaned keys: %d, failed rounds: %d of %d | <= 1.5x, no failure, 0 orphans | %s |"
                 % (f6["median"], f6["least"], f6["ratio"], f6["requests"], f6["orphans"], f6["failures"], f6["rounds"],
                    verdict(f6["ratio"] <= 1.5 and f6["failures"] == 0 and f6["orphans"] == 0)))
    met = [l for l in lines if l.startswith("| ") and l.endswith("| met |")]
    missed = [l for l in lines if l.startswith("| ") and l.endswith("| **not met** |")]
    note = "%d of %d goals met." % (len(met), len(met) + len(missed))
    if missed:
        note += " Not met: " + "; ".join(
            "%s (%s, goal %s)" % (l.split(" | ")[1], l.split(" | ")[2].replace("**", ""), l.split(" | ")[3])
            for l in missed) + "."
    note += " Load average %s at start, %s at end (2 cores): figures taken under load move by tens of percent between rounds; the rounds are in the log below." % (load_start, load_end)
    lines += ["", "## Closing note", "", note]
    lines += ["", "## Run log", "", "```"] + log_lines + ["```", ""]
    if not quick:
        with open(a.out, "w") as f:
            f.write("\n".join(lines))
        say("wrote %s" % a.out)
    else:
        print("\n".join(lines))


if __name__ == "__main__":
    main()
