output "dbfs_root_needs" {
  value = provider::cmk::key_features("dbfs_root") # ["STORAGE"]
}

# Each data type's key features, with `for_each` (here into terraform_data).
resource "terraform_data" "key_features" {
  for_each = toset(["dbfs_root", "secrets", "ebs_volumes"])
  input    = provider::cmk::key_features(each.key)
}
