#!/usr/bin/env bash
# Cost of `terraform-provider-cmk review` on large plans.
#
# Generates plans in the shape `terraform show -json` writes, made of N
# resources: copies of an aws_kms_key (known ARN and key policy), a
# databricks_mws_customer_managed_keys referencing it, and a
# databricks_mws_workspaces binding both slots to it, with the
# configuration's references; the last copy is cut short so that a plan
# has exactly N resources. Runs the review on each size several times and
# prints the median wall time and the plan's size. Goal (issue 10): under
# 2 s at 10,000 resources, and linear (the 10,000 median about ten times
# the 1,000 one). A benchmark, not a test: it asserts nothing about time
# (the generators check that they made exactly N resources).
#
# Then HCL mode (issue 20: `review DIR`, no plan): a main.tf of N resources
# in the same shape (keys with a jsonencode() policy, key configurations and
# workspaces referring to them), rows prefixed "hcl". Goal: under 2 s at
# 10,000 resources.
#
# Then `count` instances (issue 32: the analysis reads the plan in one
# pass): a plan of INSTANCES (default 2,000) instances, a quarter each of
# aws_kms_key.k[i], an aws_kms_grant.g[i] on it, a key configuration c[i]
# using it and a workspace w[i] with both slots on c[i], every reference
# recorded as Terraform records `x[count.index]` (the resource and
# count.index), rows prefixed "inst". With BASELINE_BIN set to another
# build's terraform-provider-cmk (say, the build before a change), the
# same plan is reviewed by both, round by round, and the ratio printed.
#
# Usage: bench/review_bench.sh BIN_DIR [ROUNDS] [SIZES...]
set -euo pipefail
bin_dir=$(cd "${1:?usage: review_bench.sh BIN_DIR [ROUNDS] [SIZES...]}" && pwd)
rounds=${2:-5}
shift $(($# < 2 ? $# : 2))
sizes=("$@")
[ ${#sizes[@]} -gt 0 ] || sizes=(1000 10000)
bin="$bin_dir/terraform-provider-cmk"
python=${PYTHON:-python3}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

gen() { # N FILE
  "$python" - "$1" "$2" <<'PY'
import json, sys
n, out = int(sys.argv[1]), sys.argv[2]
acct = "0d26daa6-5e44-4c97-a497-ef015f91254a"
def policy(i):
    return json.dumps({"Version": "2012-10-17", "Statement": [
        {"Sid": "root", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::123456789012:root"},
         "Action": "kms:*", "Resource": "*"},
        {"Sid": "databricks", "Effect": "Allow",
         "Principal": {"AWS": "arn:aws:iam::414351767826:root"},
         "Action": ["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:DescribeKey",
                    "kms:CreateGrant", "kms:ListGrants", "kms:RevokeGrant"],
         "Resource": "*",
         "Condition": {"StringEquals": {"aws:PrincipalTag/DatabricksAccountId": acct}}}]})
changes, planned, config = [], [], []
def add(addr, rtype, after, unknown, exprs):
    name = addr.split(".")[-1]
    changes.append({"address": addr, "mode": "managed", "type": rtype, "name": name,
                    "change": {"actions": ["create"], "before": None, "after": after,
                               "after_unknown": unknown, "before_sensitive": False, "after_sensitive": {}}})
    planned.append({"address": addr, "mode": "managed", "type": rtype, "name": name, "values": after})
    config.append({"address": addr, "mode": "managed", "type": rtype, "name": name, "expressions": exprs})
# n // 3 whole triples (key, key configuration, workspace), then the first
# n % 3 resources of one more triple: exactly n resources.
for i in range(n // 3 + (n % 3 > 0)):
    last = n - 3 * i  # resources still to add: 3 or more in a whole triple
    arn = "arn:aws:kms:us-east-1:123456789012:key/%08d-0000-4000-8000-%012d" % (i, i)
    add("aws_kms_key.k%d" % i, "aws_kms_key",
        {"arn": arn, "policy": policy(i), "is_enabled": True, "key_usage": "ENCRYPT_DECRYPT",
         "customer_master_key_spec": "SYMMETRIC_DEFAULT"}, {"id": True, "key_id": True},
        {"policy": {"constant_value": "..."}})
    if last == 1:
        break
    add("databricks_mws_customer_managed_keys.c%d" % i, "databricks_mws_customer_managed_keys",
        {"account_id": acct, "use_cases": ["MANAGED_SERVICES", "STORAGE"],
         "aws_key_info": [{"key_arn": arn, "key_alias": None}]},
        {"customer_managed_key_id": True, "id": True, "aws_key_info": [{"key_region": True}]},
        {"aws_key_info": [{"key_arn": {"references": ["aws_kms_key.k%d.arn" % i, "aws_kms_key.k%d" % i]}}]})
    if last == 2:
        break
    ref = ["databricks_mws_customer_managed_keys.c%d.customer_managed_key_id" % i,
           "databricks_mws_customer_managed_keys.c%d" % i]
    add("databricks_mws_workspaces.w%d" % i, "databricks_mws_workspaces",
        {"account_id": acct, "aws_region": "us-east-1", "pricing_tier": "ENTERPRISE",
         "workspace_name": "ws%d" % i, "compute_mode": None},
        {"managed_services_customer_managed_key_id": True, "storage_customer_managed_key_id": True,
         "workspace_id": True, "workspace_status": True},
        {"managed_services_customer_managed_key_id": {"references": ref},
         "storage_customer_managed_key_id": {"references": ref}})
assert len(changes) == n, f"generated {len(changes)} resources, not {n}"
json.dump({"format_version": "1.2", "terraform_version": "1.11.4",
           "planned_values": {"root_module": {"resources": planned}},
           "resource_changes": changes,
           "configuration": {"root_module": {"resources": config}}}, open(out, "w"))
PY
}

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

echo "review: median of $rounds runs (--format json to /dev/null); wall and CPU (user+sys) seconds"
printf "%10s %8s %8s %8s\n" resources MiB wall cpu
TIMEFORMAT="%R %U %S"
for n in "${sizes[@]}"; do
  plan="$work/plan-$n.json"
  gen "$n" "$plan"
  code=0
  "$bin" review "$plan" --format json >/dev/null || code=$? # warm-up
  if [ "$code" -ge 2 ]; then echo "review refused the generated plan (exit $code)" >&2; exit 1; fi
  : >"$work/times"
  for _ in $(seq "$rounds"); do
    { time "$bin" review "$plan" --format json >/dev/null || true; } 2>>"$work/times"
  done
  wall=$(awk '{print $1}' "$work/times" | median)
  cpu=$(awk '{printf "%.3f\n", $2 + $3}' "$work/times" | median)
  mib=$(awk -v b="$(stat -c %s "$plan")" 'BEGIN {printf "%.1f", b / 1048576}')
  printf "%10d %8s %8s %8s\n" "$n" "$mib" "$wall" "$cpu"
done

gen_hcl() { # N DIR
  mkdir -p "$2"
  "$python" - "$1" "$2/main.tf" <<'PY'
import sys
n, out = int(sys.argv[1]), sys.argv[2]
acct = "0d26daa6-5e44-4c97-a497-ef015f91254a"
parts = ['variable "account_id" {\n  default = "%s"\n}\n' % acct,
         'provider "aws" {\n  region = "us-east-1"\n}\n']
block = """resource "aws_kms_key" "k%(i)d" {
  description = "key %(i)d"
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      { Sid = "root", Effect = "Allow", Principal = { AWS = "arn:aws:iam::123456789012:root" }, Action = "kms:*", Resource = "*" },
      { Sid = "databricks", Effect = "Allow", Principal = { AWS = "arn:aws:iam::414351767826:root" },
        Action = ["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:DescribeKey", "kms:CreateGrant", "kms:ListGrants", "kms:RevokeGrant"],
      Resource = "*", Condition = { StringEquals = { "aws:PrincipalTag/DatabricksAccountId" = var.account_id } } },
    ]
  })
}

resource "databricks_mws_customer_managed_keys" "c%(i)d" {
  account_id = var.account_id
  use_cases  = ["MANAGED_SERVICES", "STORAGE"]
  aws_key_info {
    key_arn = aws_kms_key.k%(i)d.arn
  }
}

resource "databricks_mws_workspaces" "w%(i)d" {
  account_id                               = var.account_id
  aws_region                               = "us-east-1"
  pricing_tier                             = "ENTERPRISE"
  workspace_name                           = "ws%(i)d"
  managed_services_customer_managed_key_id = databricks_mws_customer_managed_keys.c%(i)d.customer_managed_key_id
  storage_customer_managed_key_id          = databricks_mws_customer_managed_keys.c%(i)d.customer_managed_key_id
}
"""
# n // 3 whole triples (key, key configuration, workspace), then the first
# n % 3 resources of one more triple: exactly n resources.
resources = (block % {"i": n // 3}).split("\n\n")
for i in range(n // 3):
    parts.append(block % {"i": i})
parts.extend(r.rstrip("\n") + "\n" for r in resources[: n % 3])
text = "\n".join(parts)
made = text.count('\nresource "')
assert made == n, f"generated {made} resources, not {n}"
open(out, "w").write(text)
PY
}

echo
echo "review in HCL mode (review DIR, no plan): median of $rounds runs; wall and CPU seconds"
printf "%4s %10s %8s %8s %8s\n" mode resources MiB wall cpu
for n in "${sizes[@]}"; do
  dir="$work/hcl-$n"
  gen_hcl "$n" "$dir"
  code=0
  "$bin" review "$dir" --format json >/dev/null || code=$? # warm-up
  if [ "$code" -ge 2 ]; then echo "review refused the generated configuration (exit $code)" >&2; exit 1; fi
  : >"$work/times"
  for _ in $(seq "$rounds"); do
    { time "$bin" review "$dir" --format json >/dev/null || true; } 2>>"$work/times"
  done
  wall=$(awk '{print $1}' "$work/times" | median)
  cpu=$(awk '{printf "%.3f\n", $2 + $3}' "$work/times" | median)
  mib=$(awk -v b="$(stat -c %s "$dir/main.tf")" 'BEGIN {printf "%.1f", b / 1048576}')
  printf "%4s %10d %8s %8s %8s\n" hcl "$n" "$mib" "$wall" "$cpu"
done

gen_instances() { # N FILE
  "$python" - "$1" "$2" <<'PY'
import json, sys
n, out = int(sys.argv[1]), sys.argv[2]
acct = "0d26daa6-5e44-4c97-a497-ef015f91254a"
policy = json.dumps({"Version": "2012-10-17", "Statement": [
    {"Sid": "root", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::123456789012:root"},
     "Action": "kms:*", "Resource": "*"}]})
m = n // 4
changes, planned = [], []
def add(rtype, name, i, after, unknown):
    addr = "%s.%s[%d]" % (rtype, name, i)
    changes.append({"address": addr, "mode": "managed", "type": rtype, "name": name, "index": i,
                    "change": {"actions": ["create"], "before": None, "after": after,
                               "after_unknown": unknown}})
    planned.append({"address": addr, "mode": "managed", "type": rtype, "name": name, "index": i,
                    "values": after})
for i in range(m):
    add("aws_kms_key", "k", i, {"policy": policy, "is_enabled": True, "region": "us-east-1"},
        {"arn": True, "id": True, "key_id": True})
for i in range(m):
    add("aws_kms_grant", "g", i, {"grantee_principal": "arn:aws:iam::414351767826:root",
                                  "operations": ["Encrypt", "Decrypt"]}, {"key_id": True})
for i in range(m):
    add("databricks_mws_customer_managed_keys", "c", i,
        {"account_id": acct, "use_cases": ["MANAGED_SERVICES", "STORAGE"], "aws_key_info": [{}]},
        {"customer_managed_key_id": True, "id": True,
         "aws_key_info": [{"key_arn": True, "key_region": True}]})
for i in range(m):
    add("databricks_mws_workspaces", "w", i,
        {"account_id": acct, "aws_region": "us-east-1", "pricing_tier": "ENTERPRISE",
         "workspace_name": "ws%d" % i},
        {"managed_services_customer_managed_key_id": True, "storage_customer_managed_key_id": True,
         "workspace_id": True, "workspace_status": True})
def ref(a):
    # `a[count.index].x`, as Terraform records it.
    return {"references": [a, "count.index"]}
count = {"references": ["var.n"]}
slot = ref("databricks_mws_customer_managed_keys.c")
config = [
    {"address": "aws_kms_key.k", "mode": "managed", "type": "aws_kms_key", "name": "k",
     "expressions": {"policy": {"constant_value": policy}}, "count_expression": count},
    {"address": "aws_kms_grant.g", "mode": "managed", "type": "aws_kms_grant", "name": "g",
     "expressions": {"key_id": ref("aws_kms_key.k")}, "count_expression": count},
    {"address": "databricks_mws_customer_managed_keys.c", "mode": "managed",
     "type": "databricks_mws_customer_managed_keys", "name": "c", "count_expression": count,
     "expressions": {"aws_key_info": [{"key_arn": ref("aws_kms_key.k")}]}},
    {"address": "databricks_mws_workspaces.w", "mode": "managed", "type": "databricks_mws_workspaces",
     "name": "w", "count_expression": count,
     "expressions": {"managed_services_customer_managed_key_id": slot,
                     "storage_customer_managed_key_id": slot}},
]
assert len(changes) == 4 * m and m > 0, f"generated {len(changes)} instances"
json.dump({"format_version": "1.2", "terraform_version": "1.11.4",
           "planned_values": {"root_module": {"resources": planned}},
           "resource_changes": changes,
           "configuration": {"root_module": {"resources": config}}}, open(out, "w"))
PY
}

instances=${INSTANCES:-2000}
plan="$work/instances-$instances.json"
gen_instances "$instances" "$plan"
echo
echo "review of count instances (key, grant, key configuration, workspace each): median of $rounds runs; wall and CPU seconds"
printf "%4s %10s %8s %8s %8s\n" mode instances MiB wall cpu
bins=("$bin")
[ -z "${BASELINE_BIN:-}" ] || bins+=("$BASELINE_BIN")
for i in "${!bins[@]}"; do
  code=0
  "${bins[$i]}" review "$plan" --format json >/dev/null || code=$? # warm-up
  if [ "$code" -ge 2 ]; then echo "${bins[$i]} refused the generated plan (exit $code)" >&2; exit 1; fi
  : >"$work/times-$i"
done
# Round by round, each build in turn, so that background load hits both alike.
for _ in $(seq "$rounds"); do
  for i in "${!bins[@]}"; do
    { time "${bins[$i]}" review "$plan" --format json >/dev/null || true; } 2>>"$work/times-$i"
  done
done
mib=$(awk -v b="$(stat -c %s "$plan")" 'BEGIN {printf "%.1f", b / 1048576}')
walls=()
for i in "${!bins[@]}"; do
  wall=$(awk '{print $1}' "$work/times-$i" | median)
  cpu=$(awk '{printf "%.3f\n", $2 + $3}' "$work/times-$i" | median)
  label=inst
  [ "$i" -eq 0 ] || label=base
  printf "%4s %10d %8s %8s %8s\n" "$label" "$instances" "$mib" "$wall" "$cpu"
  walls+=("$wall")
done
if [ ${#walls[@]} -eq 2 ]; then
  awk -v n="${walls[0]}" -v o="${walls[1]}" 'BEGIN {printf "this build / BASELINE_BIN: %.3fx the wall time (%.1fx faster)\n", n / o, (n > 0 ? o / n : 0)}'
fi
