resource "cmk_workspace_binding" "analytics" {
  workspace_id            = 1234567890123456
  managed_services_key_id = cmk_key_configuration.workspace.customer_managed_key_id
  storage_key_id          = cmk_key_configuration.workspace.customer_managed_key_id

  # fail the plan if the bound keys cannot protect these
  required_coverage = ["dbfs_root", "secrets", "notebooks"]
}
