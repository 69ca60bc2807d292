data "cmk_workspace" "analytics" {
  workspace_id = 1234567890123456
}

# A KMS key for this workspace must be in its region.
output "key_region" {
  value = data.cmk_workspace.analytics.aws_region
}

# Several workspaces with `count`.
variable "workspace_ids" {
  type    = list(number)
  default = [1234567890123456, 3234567890123456]
}

data "cmk_workspace" "each" {
  count        = length(var.workspace_ids)
  workspace_id = var.workspace_ids[count.index]
}

output "regions" {
  value = data.cmk_workspace.each[*].aws_region
}
