locals {
  key = provider::cmk::parse_key_arn(aws_kms_key.workspace.arn)
}

output "key_region" {
  value = local.key.region
}
