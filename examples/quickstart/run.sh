#!/usr/bin/env bash
# Runs examples/quickstart with the locally built provider (no `terraform init`).
# Usage: examples/quickstart/run.sh BIN_DIR
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
bin_dir=$(cd "${1:?usage: run.sh BIN_DIR}" && pwd)
terraform=${TERRAFORM:-terraform}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp "$here/main.tf" "$work/"
cat > "$work/cli.tfrc" <<EOT
provider_installation {
  dev_overrides { "databricks-cmk/cmk" = "$bin_dir" }
  direct {}
}
EOT
export TF_CLI_CONFIG_FILE="$work/cli.tfrc" CHECKPOINT_DISABLE=1
cd "$work"
echo "== terraform apply (provider: $bin_dir/terraform-provider-cmk)"
"$terraform" apply -auto-approve -input=false -compact-warnings
echo
echo "== outputs"
"$terraform" output key_features
"$terraform" output parsed_key_arn
"$terraform" output -raw key_policy
echo
