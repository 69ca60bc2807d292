#!/usr/bin/env bash
# Runs examples/quickstart with the locally built provider against cmk-sandbox
# (no `terraform init`, no cloud account).
# Usage: examples/quickstart/run.sh BIN_DIR
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
bin_dir=$(cd "${1:?usage: run.sh BIN_DIR}" && pwd)
terraform=${TERRAFORM:-terraform}
work=$(mktemp -d)
sandbox_pid=
cleanup() {
  [ -n "$sandbox_pid" ] && kill "$sandbox_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

# 1. The sandbox, on a free loopback port.
"$bin_dir/cmk-sandbox" --listen 127.0.0.1:0 --seed "$repo/examples/sandbox/seed.json" \
  --state "$work/sandbox-state.json" --provisioning-delay-ms 500 >"$work/sandbox.out" &
sandbox_pid=$!
for _ in $(seq 100); do grep -q "listening on" "$work/sandbox.out" 2>/dev/null && break; sleep 0.05; done
host=$(sed -n 's/^listening on //p' "$work/sandbox.out")
[ -n "$host" ] || { echo "cmk-sandbox did not start"; exit 1; }
echo "== cmk-sandbox (Databricks Account API emulator) at $host"

# 2. Terraform with the locally built provider.
cp "$here/main.tf" "$work/"
cat > "$work/cli.tfrc" <<EOT
provider_installation {
  dev_overrides { "databricks-cmk/cmk" = "$bin_dir" }
  direct {}
}
EOT
export TF_CLI_CONFIG_FILE="$work/cli.tfrc" CHECKPOINT_DISABLE=1
# OAuth machine-to-machine: the seed's service principal, as Databricks'
# Account API needs (it does not accept personal access tokens).
export DATABRICKS_CLIENT_ID=3a1b6c2d-sp-terraform DATABRICKS_CLIENT_SECRET=sandbox-oauth-secret
export TF_VAR_databricks_host="$host"
cd "$work"
echo "== the same for every workspace, with for_each: terraform plan (for_each/main.tf)"
mkdir "$work/for_each"
cp "$here/for_each/main.tf" "$work/for_each/"
(cd "$work/for_each" && "$terraform" plan -input=false -compact-warnings)
echo
echo "== terraform apply"
"$terraform" apply -auto-approve -input=false -compact-warnings
echo
echo "== terraform plan again: nothing to do"
"$terraform" plan -input=false -compact-warnings -detailed-exitcode && echo "(no changes)"
echo
echo "== the generated key policy"
"$terraform" output -raw key_policy | python3 -m json.tool
echo
echo "== a mistake caught at plan time: the same binding on a PREMIUM, SERVERLESS workspace in another region"
if "$terraform" plan -input=false -compact-warnings -var workspace_id=2234567890123456 2>&1; then
  echo "unexpected: the plan passed"; exit 1
fi
echo
echo "== the plan above failed on purpose; nothing was sent to Databricks."
