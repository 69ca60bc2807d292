terraform {
  required_providers {
    cmk = { source = "databricks-cmk/cmk", version = ">= 0.1.0" }
  }
}

# OAuth machine-to-machine (a service principal), the usual choice for
# Terraform: the Account API does not accept personal access tokens.
# DATABRICKS_ACCOUNT_ID, DATABRICKS_CLIENT_ID and DATABRICKS_CLIENT_SECRET
# come from the environment (or a ~/.databrickscfg profile), not this file.
provider "cmk" {}

# Or your own login through the Databricks CLI
# (`databricks auth login --host https://accounts.cloud.databricks.com --account-id <id>`):
#
# provider "cmk" {
#   auth_type = "databricks-cli"
# }
