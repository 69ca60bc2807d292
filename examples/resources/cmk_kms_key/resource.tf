# A key for both use cases; its policy is generated and checked at plan time.
resource "cmk_kms_key" "workspace" {
  use_cases              = ["MANAGED_SERVICES", "STORAGE"]
  databricks_account_id  = "0d26daa6-5e44-4c97-a497-ef015f91254a"
  cross_account_role_arn = "arn:aws:iam::123456789012:role/databricks-cross-account"
  alias                  = "alias/databricks-workspace"
  description            = "Databricks workspace key"
  tags                   = { team = "data-platform" }

  # The defaults, spelled out: destroy is refused until this is set to false
  # and applied; then destroy schedules deletion after the waiting period.
  deletion_protection     = true
  deletion_window_in_days = 30
  enable_key_rotation     = true
}

# Or bring your own policy: it is checked against what the use cases need,
# and `terraform plan` fails on the `policy` attribute when it falls short.
resource "cmk_kms_key" "managed_services" {
  use_cases = ["MANAGED_SERVICES"]
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      {
        Sid       = "Admin"
        Effect    = "Allow"
        Principal = { AWS = "arn:aws:iam::123456789012:root" }
        Action    = "kms:*"
        Resource  = "*"
      },
      {
        Sid       = "Databricks"
        Effect    = "Allow"
        Principal = { AWS = "arn:aws:iam::414351767826:root" }
        Action    = ["kms:Encrypt", "kms:Decrypt"]
        Resource  = "*"
      },
    ]
  })
}

# One key per workspace with `for_each` (or `count`): values from variables,
# `each.key` and `count.index` are fine; `terraform validate` sees them as
# unknown and the plan checks each key once they are known.
variable "workspace_keys" {
  type = map(object({ databricks_account_id = string }))
  default = {
    analytics = { databricks_account_id = "0d26daa6-5e44-4c97-a497-ef015f91254a" }
    staging   = { databricks_account_id = "0d26daa6-5e44-4c97-a497-ef015f91254a" }
  }
}

resource "cmk_kms_key" "per_workspace" {
  for_each              = var.workspace_keys
  use_cases             = ["MANAGED_SERVICES", "STORAGE"]
  databricks_account_id = each.value.databricks_account_id
  alias                 = "alias/databricks-${each.key}"
  tags                  = { team = "data-platform", workspace = each.key }
}
