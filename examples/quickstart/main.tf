# Quickstart: the provider against cmk-sandbox, the project's local emulator
# of the Databricks Account API. `make demo` starts the sandbox and runs this.

terraform {
  required_version = ">= 1.11"
  required_providers {
    cmk = { source = "databricks-cmk/cmk", version = ">= 0.1.0" }
  }
}

variable "databricks_host" {
  type = string
}

variable "workspace_id" {
  type    = number
  default = 1234567890123456 # "analytics-prod" in examples/sandbox/seed.json
}

# OAuth machine-to-machine: the service principal's client id and secret come
# from DATABRICKS_CLIENT_ID and DATABRICKS_CLIENT_SECRET (run.sh sets the
# sandbox's), as they should in real use, not from this file.
provider "cmk" {
  host                            = var.databricks_host
  account_id                      = "7f3c9a52-1d4e-4b8a-9c61-2e5f8d0a4b13"
  workspace_host_template         = "${var.databricks_host}/_ws/{deployment_name}"
  workspace_poll_interval_seconds = 0.2
}

# The KMS key policy Databricks needs for a key that serves both use cases,
# including the statement for cluster EBS volumes.
data "cmk_kms_key_policy" "workspace_key" {
  use_cases              = ["MANAGED_SERVICES", "STORAGE"]
  aws_account_id         = "123456789012"
  databricks_account_id  = "7f3c9a52-1d4e-4b8a-9c61-2e5f8d0a4b13"
  cross_account_role_arn = "arn:aws:iam::123456789012:role/databricks-cross-account"
}

# Register the key with the Databricks account...
resource "cmk_key_configuration" "storage" {
  use_cases = ["STORAGE"]
  aws_key_info = {
    key_arn   = "arn:aws:kms:us-east-1:123456789012:key/11111111-2222-3333-4444-555555555555"
    key_alias = "alias/databricks-storage"
  }
}

# ...and bind it to the workspace's storage (set once: Databricks cannot
# replace it). Passed whole, the new configuration is checked against the
# workspace at plan time, before anything is created. The managed-services
# slot is left unset: the workspace keeps the key it has, which protects
# `secrets`.
resource "cmk_workspace_binding" "analytics" {
  workspace_id      = var.workspace_id
  storage_key       = cmk_key_configuration.storage
  required_coverage = ["dbfs_root", "job_results", "secrets"]
}

output "key_policy" {
  description = "Paste into aws_kms_key.policy."
  value       = data.cmk_kms_key_policy.workspace_key.json
}

output "binding" {
  value = {
    workspace        = cmk_workspace_binding.analytics.workspace_name
    status           = cmk_workspace_binding.analytics.workspace_status
    managed_services = cmk_workspace_binding.analytics.managed_services_key_id
    storage          = cmk_workspace_binding.analytics.storage_key_id
  }
}

# Which key feature protects which data.
output "key_features" {
  value = {
    for t in ["dbfs_root", "secrets", "interactive_notebook_results", "ebs_volumes", "model_serving_image"] :
    t => provider::cmk::key_features(t)
  }
}
