output "dbfs_root_needs" {
  value = provider::cmk::key_features("dbfs_root") # ["STORAGE"]
}
