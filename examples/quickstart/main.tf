# Quickstart: what the provider knows, without any cloud account.
#
#   make demo
#
# runs this configuration with the locally built provider.

terraform {
  required_version = ">= 1.11"
  required_providers {
    cmk = { source = "databricks-cmk/cmk" }
  }
}

provider "cmk" {}

# The KMS key policy Databricks needs for a key that serves both use cases,
# including the statement for cluster EBS volumes.
data "cmk_kms_key_policy" "workspace_key" {
  use_cases              = ["MANAGED_SERVICES", "STORAGE"]
  aws_account_id         = "123456789012"
  databricks_account_id  = "0d26daa6-5e44-4c97-a497-ef015f91254a"
  cross_account_role_arn = "arn:aws:iam::123456789012:role/databricks-cross-account"
}

output "key_policy" {
  description = "Paste into aws_kms_key.policy, or let cmk_kms_key use it."
  value       = data.cmk_kms_key_policy.workspace_key.json
}

# Which key feature protects which data.
output "key_features" {
  value = {
    for t in ["dbfs_root", "secrets", "interactive_notebook_results", "ebs_volumes", "model_serving_image"] :
    t => provider::cmk::key_features(t)
  }
}

output "parsed_key_arn" {
  value = provider::cmk::parse_key_arn("arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab")
}
