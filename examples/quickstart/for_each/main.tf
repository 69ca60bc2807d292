# The quickstart for every workspace at once: one storage key configuration
# and one binding per workspace, with `for_each` over a map. `make demo`
# plans it (run.sh) before it applies the single-workspace quickstart.

terraform {
  required_version = ">= 1.11"
  required_providers {
    cmk = { source = "databricks-cmk/cmk", version = ">= 0.1.0" }
  }
}

variable "databricks_host" {
  type = string
}

# Workspace name => workspace id (both in examples/sandbox/seed.json).
variable "workspaces" {
  type = map(number)
  default = {
    analytics-prod    = 1234567890123456
    analytics-staging = 3234567890123456
  }
}

provider "cmk" {
  host                            = var.databricks_host
  account_id                      = "7f3c9a52-1d4e-4b8a-9c61-2e5f8d0a4b13"
  workspace_host_template         = "${var.databricks_host}/_ws/{deployment_name}"
  workspace_poll_interval_seconds = 0.2
}

resource "cmk_key_configuration" "storage" {
  for_each  = var.workspaces
  use_cases = ["STORAGE"]
  aws_key_info = {
    key_arn   = "arn:aws:kms:us-east-1:123456789012:key/11111111-2222-3333-4444-555555555555"
    key_alias = "alias/${each.key}-storage"
  }
}

# Each binding gets its own configuration whole, so every rule is checked at
# plan for every workspace, although no configuration exists yet.
resource "cmk_workspace_binding" "each" {
  for_each          = var.workspaces
  workspace_id      = each.value
  storage_key       = cmk_key_configuration.storage[each.key]
  required_coverage = ["dbfs_root"]
}
