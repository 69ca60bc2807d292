# Quickstart, GovCloud form: a KMS key, its Databricks key configuration and
# the binding to a workspace in us-gov-west-1, for a GovCloud deployment.
# The deployment decides Databricks' principal in the generated key policy:
# GovCloud civilian arn:aws-us-gov:iam::044793339203:root, GovCloud DoD
# arn:aws-us-gov:iam::170661010020:root (never the commercial account).
#
# Against Databricks: host = "https://accounts.cloud.databricks.us" (civilian)
# or "https://accounts-dod.cloud.databricks.mil" (DoD) names the deployment, and
# `deployment` can be left out. Against cmk-sandbox (seeded with
# examples/sandbox/seed-govcloud.json) and a local KMS, the host names none, so
# `deployment` says which.

terraform {
  required_version = ">= 1.11"
  required_providers {
    cmk = { source = "databricks-cmk/cmk", version = ">= 0.1.0" }
  }
}

variable "databricks_host" {
  type    = string
  default = "https://accounts.cloud.databricks.us"
}

variable "deployment" {
  type    = string
  default = "govcloud-civilian" # or "govcloud-dod"
}

variable "kms_endpoint" {
  type    = string
  default = null # a local KMS in tests; unset, the AWS SDK's (FIPS with use_fips_endpoint)
}

variable "aws_account_id" {
  type    = string
  default = "123456789012"
}

variable "workspace_id" {
  type    = number
  default = 4234567890123456 # "analytics-gov" in examples/sandbox/seed-govcloud.json
}

provider "cmk" {
  host                            = var.databricks_host
  deployment                      = var.deployment
  account_id                      = "5c2e8b41-7a9d-4f3e-b6c1-0d4a2e9f7b35"
  workspace_host_template         = "${var.databricks_host}/_ws/{deployment_name}"
  workspace_poll_interval_seconds = 0.2
  aws_region                      = "us-gov-west-1"
  kms_endpoint                    = var.kms_endpoint
  use_fips_endpoint               = var.kms_endpoint == null
}

# The key, its policy generated for the deployment's Databricks principal.
resource "cmk_kms_key" "workspace" {
  use_cases              = ["MANAGED_SERVICES", "STORAGE"]
  aws_account_id         = var.aws_account_id
  databricks_account_id  = "5c2e8b41-7a9d-4f3e-b6c1-0d4a2e9f7b35"
  cross_account_role_arn = "arn:aws-us-gov:iam::${var.aws_account_id}:role/databricks-cross-account"
  alias                  = "alias/databricks-gov-workspace"
  deletion_protection    = false
}

resource "cmk_key_configuration" "workspace" {
  use_cases = ["MANAGED_SERVICES", "STORAGE"]
  aws_key_info = {
    key_arn = cmk_kms_key.workspace.arn
  }
}

resource "cmk_workspace_binding" "analytics" {
  workspace_id          = var.workspace_id
  managed_services_key  = cmk_key_configuration.workspace
  storage_key           = cmk_key_configuration.workspace
  required_coverage     = ["dbfs_root", "secrets"]
}

output "key_policy" {
  value = cmk_kms_key.workspace.policy
}

output "key_arn" {
  value = cmk_kms_key.workspace.arn
}
