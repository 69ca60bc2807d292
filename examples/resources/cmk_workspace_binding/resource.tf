# A key configuration created in the same plan...
resource "cmk_key_configuration" "workspace" {
  use_cases = ["MANAGED_SERVICES", "STORAGE"]
  aws_key_info = {
    key_arn = "arn:aws:kms:us-east-1:123456789012:key/11111111-2222-3333-4444-555555555555"
  }
}

# ...bound whole, so that `terraform plan` checks every rule against it
# (use cases, region, cluster volumes on serverless, tier, running compute)
# before anything is created.
resource "cmk_workspace_binding" "analytics" {
  workspace_id         = 1234567890123456
  managed_services_key = cmk_key_configuration.workspace
  storage_key          = cmk_key_configuration.workspace

  # fail the plan if the bound keys cannot protect these
  required_coverage = ["dbfs_root", "secrets", "notebooks"]
}

# A key configuration that already exists can be given by its bare id
# instead: managed_services_key_id = "0b6f1c3e-8a2d-4f57-9e14-6c3d2a1b0f98".
# A slot left unset stays as it is.

# Import with the workspace id, or the official databricks_mws_workspaces id
# "<account_id>/<workspace_id>" (the account must be the provider's):
#   terraform import cmk_workspace_binding.analytics 1234567890123456
#   terraform import cmk_workspace_binding.analytics 7f3c9a52-1d4e-4b8a-9c61-2e5f8d0a4b13/1234567890123456

# Many workspaces: one storage key configuration and one binding each, with
# `for_each` over a map (workspace name => workspace id).
variable "staging_workspaces" {
  type    = map(number)
  default = { analytics-staging = 3234567890123456 }
}

resource "cmk_key_configuration" "storage" {
  for_each  = var.staging_workspaces
  use_cases = ["STORAGE"]
  aws_key_info = {
    key_arn   = "arn:aws:kms:us-east-1:123456789012:key/11111111-2222-3333-4444-555555555555"
    key_alias = "alias/${each.key}-storage"
  }
}

resource "cmk_workspace_binding" "staging" {
  for_each     = var.staging_workspaces
  workspace_id = each.value
  storage_key  = cmk_key_configuration.storage[each.key]
}
