variable "key_arn" {
  type    = string
  default = "arn:aws:kms:us-east-1:123456789012:key/11111111-2222-3333-4444-555555555555"
}

locals {
  key = provider::cmk::parse_key_arn(var.key_arn)
}

# A workspace that uses this key must be in this region.
output "key_region" {
  value = local.key.region # "us-east-1"
}

# Several keys with `count`.
variable "key_arns" {
  type = list(string)
  default = [
    "arn:aws:kms:us-east-1:123456789012:key/11111111-2222-3333-4444-555555555555",
    "arn:aws:kms:eu-west-1:123456789012:key/66666666-7777-4888-9999-000000000000",
  ]
}

resource "terraform_data" "key_regions" {
  count = length(var.key_arns)
  input = provider::cmk::parse_key_arn(var.key_arns[count.index]).region
}
