terraform {
  required_providers {
    cmk = { source = "databricks-cmk/cmk" }
  }
}

provider "cmk" {}
