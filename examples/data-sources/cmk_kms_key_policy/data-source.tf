data "cmk_kms_key_policy" "workspace" {
  use_cases              = ["MANAGED_SERVICES", "STORAGE"]
  aws_account_id         = "123456789012"
  databricks_account_id  = "0d26daa6-5e44-4c97-a497-ef015f91254a"
  cross_account_role_arn = "arn:aws:iam::123456789012:role/databricks-cross-account"
}

# With the AWS provider, give it to the key:
#
#   resource "aws_kms_key" "workspace" {
#     description         = "Databricks workspace key"
#     enable_key_rotation = true
#     policy              = data.cmk_kms_key_policy.workspace.json
#   }
#
# or let this provider create the key with the same policy: `cmk_kms_key`.
output "key_policy" {
  value = data.cmk_kms_key_policy.workspace.json
}

# One policy per use case, with `for_each`.
data "cmk_kms_key_policy" "per_use_case" {
  for_each       = toset(["MANAGED_SERVICES", "STORAGE"])
  use_cases      = [each.key]
  aws_account_id = "123456789012"
}
