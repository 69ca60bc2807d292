# Dashboards of a workspace, as the Lakeview API lists them (display_name and create_time).
variable "dashboards" {
  type = list(object({ display_name = string, create_time = string }))
  default = [
    { display_name = "Revenue (2023)", create_time = "2023-06-01T09:00:00Z" },
    { display_name = "Churn", create_time = "2025-02-10T14:30:00Z" },
  ]
}

# Dashboards a managed-services key does not encrypt: re-create them after the key is bound.
output "dashboards_to_recreate" {
  value = [for d in var.dashboards : d.display_name if !provider::cmk::dashboard_protected(d.create_time)]
  # ["Revenue (2023)"]
}

# The same, one dashboard at a time with `count`.
resource "terraform_data" "dashboard_protected" {
  count = length(var.dashboards)
  input = provider::cmk::dashboard_protected(var.dashboards[count.index].create_time)
}
