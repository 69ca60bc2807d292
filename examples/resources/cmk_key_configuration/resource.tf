# The KMS key, with the policy Databricks needs for both use cases...
resource "cmk_kms_key" "workspace" {
  use_cases              = ["MANAGED_SERVICES", "STORAGE"]
  databricks_account_id  = "7f3c9a52-1d4e-4b8a-9c61-2e5f8d0a4b13"
  cross_account_role_arn = "arn:aws:iam::123456789012:role/databricks-cross-account"
}

# ...registered with the Databricks account.
resource "cmk_key_configuration" "workspace" {
  use_cases = ["MANAGED_SERVICES", "STORAGE"]
  aws_key_info = {
    key_arn   = cmk_kms_key.workspace.arn
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

# One configuration per use case of the same key, with `for_each`.
resource "cmk_key_configuration" "per_use_case" {
  for_each  = toset(["MANAGED_SERVICES", "STORAGE"])
  use_cases = [each.key]
  aws_key_info = {
    key_arn = cmk_kms_key.workspace.arn
  }
}
