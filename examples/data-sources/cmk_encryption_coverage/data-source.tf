data "cmk_encryption_coverage" "analytics" {
  workspace_id = 1234567890123456
}

output "not_protected" {
  value = data.cmk_encryption_coverage.analytics.not_protected
}

# Fail a run when something that must be protected is not.
check "secrets_are_protected" {
  assert {
    condition     = contains(data.cmk_encryption_coverage.analytics.protected, "secrets")
    error_message = "secrets are not protected by a customer-managed key"
  }
}

# The coverage of several workspaces, with `for_each`.
data "cmk_encryption_coverage" "each" {
  for_each     = { prod = 1234567890123456, staging = 3234567890123456 }
  workspace_id = each.value
}

output "not_protected_by_workspace" {
  value = { for name, c in data.cmk_encryption_coverage.each : name => c.not_protected }
}
