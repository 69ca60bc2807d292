resource "cmk_key_configuration" "workspace" {
  use_cases = ["MANAGED_SERVICES", "STORAGE"]
  aws_key_info = {
    key_arn   = aws_kms_key.workspace.arn
    key_alias = "alias/databricks-workspace"
    # the storage key also encrypts cluster EBS volumes (Databricks' default)
    reuse_key_for_cluster_volumes = true
  }
}

# Import with the bare id, or the official provider's "<account_id>/<id>":
#   terraform import cmk_key_configuration.workspace 0b6f1c3e-8a2d-4f57-9e14-6c3d2a1b0f98
#
# Or move from the official provider without recreating anything:
#   moved {
#     from = databricks_mws_customer_managed_keys.workspace
#     to   = cmk_key_configuration.workspace
#   }
