data "cmk_workspace" "analytics" {
  workspace_id = 1234567890123456
}

# A KMS key for this workspace must be in its region.
output "key_region" {
  value = data.cmk_workspace.analytics.aws_region
}
