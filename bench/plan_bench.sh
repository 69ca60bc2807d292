#!/usr/bin/env bash
# Plan-time cost of the provider against Terraform's built-in terraform_data.
#
# Several alternating rounds of `terraform plan` over N cmk_kms_key_policy data
# sources (through the real plugin protocol, mTLS included) and over N
# terraform_data resources (built in: no plugin at all), in one run on one
# machine. Prints each median and the ratio. A third series runs the provider
# with TF_DISABLE_PLUGIN_TLS=1, to show what Terraform's own side of mTLS
# costs (it generates a P-521 client certificate for every plugin start).
# A benchmark, not a test: it asserts nothing.
#
# Usage: bench/plan_bench.sh BIN_DIR [N] [ROUNDS]
set -euo pipefail
bin_dir=$(cd "${1:?usage: plan_bench.sh BIN_DIR [N] [ROUNDS]}" && pwd)
n=${2:-500}
rounds=${3:-7}
terraform=${TERRAFORM:-terraform}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

mkdir -p "$work/cmk" "$work/builtin" "$work/providers"
cp "$bin_dir/terraform-provider-cmk" "$work/providers/"
cat > "$work/cli.tfrc" <<EOT
provider_installation {
  dev_overrides { "databricks-cmk/cmk" = "$work/providers" }
  direct {}
}
EOT
cat > "$work/cmk/main.tf" <<EOT
terraform {
  required_providers {
    cmk = { source = "databricks-cmk/cmk" }
  }
}
data "cmk_kms_key_policy" "p" {
  count          = $n
  use_cases      = ["MANAGED_SERVICES", "STORAGE"]
  aws_account_id = format("%012d", count.index)
}
EOT
cat > "$work/builtin/main.tf" <<EOT
resource "terraform_data" "d" {
  count = $n
  input = format("%012d", count.index)
}
EOT

export TF_CLI_CONFIG_FILE="$work/cli.tfrc" CHECKPOINT_DISABLE=1 TF_IN_AUTOMATION=1
unset TF_LOG

plan() { # dir [env...] -> seconds
  local t0 t1 dir=$1
  shift
  t0=$(date +%s%N)
  env "$@" "$terraform" -chdir="$dir" plan -input=false -no-color -lock=false >/dev/null 2>"$work/err" || { cat "$work/err" >&2; exit 1; }
  t1=$(date +%s%N)
  echo "scale=3; ($t1 - $t0) / 1000000000" | bc
}

# warm-up (page cache, first start)
plan "$work/cmk" >/dev/null
plan "$work/builtin" >/dev/null

cmk_times=() builtin_times=() notls_times=()
for ((i = 1; i <= rounds; i++)); do
  c=$(plan "$work/cmk"); b=$(plan "$work/builtin"); u=$(plan "$work/cmk" TF_DISABLE_PLUGIN_TLS=1)
  cmk_times+=("$c"); builtin_times+=("$b"); notls_times+=("$u")
  printf 'round %d: cmk_kms_key_policy x%d %ss (without plugin TLS %ss), terraform_data x%d %ss\n' "$i" "$n" "$c" "$u" "$n" "$b"
done

median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else printf "%.3f\n", (a[NR/2]+a[NR/2+1])/2}'; }
mc=$(median "${cmk_times[@]}"); mb=$(median "${builtin_times[@]}"); mu=$(median "${notls_times[@]}")
ratio=$(echo "scale=2; $mc / $mb" | bc)
ratio_notls=$(echo "scale=2; $mu / $mb" | bc)
echo "median: cmk_kms_key_policy x$n ${mc}s (without plugin TLS ${mu}s), terraform_data x$n ${mb}s"
echo "ratio (cmk / built-in): ${ratio}x  (goal: 1.2x or less)"
echo "ratio without plugin TLS (TF_DISABLE_PLUGIN_TLS=1): ${ratio_notls}x"
