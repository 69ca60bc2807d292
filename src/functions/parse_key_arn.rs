//! `provider::cmk::parse_key_arn(arn)`: the parts of a KMS key ARN.

use std::collections::BTreeMap;

use crate::rules::ids;
use crate::tfplugin::{Function, FunctionDef, FunctionError, Param, Type, Value};

pub struct ParseKeyArn;

fn return_type() -> Type {
    Type::Object(BTreeMap::from([
        ("partition".to_string(), Type::String),
        ("region".to_string(), Type::String),
        ("account_id".to_string(), Type::String),
        ("key_id".to_string(), Type::String),
        ("multi_region".to_string(), Type::Bool),
    ]))
}

impl Function for ParseKeyArn {
    fn name(&self) -> &'static str {
        "parse_key_arn"
    }

    fn definition(&self) -> FunctionDef {
        FunctionDef {
            summary: "Splits a KMS key ARN into its parts",
            description: "Returns `{partition, region, account_id, key_id, multi_region}` for a KMS key ARN such as `arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab`. `multi_region` is true for multi-Region keys (`mrk-` ids). An alias ARN or a malformed ARN is an error that says what is wrong.",
            params: vec![Param {
                name: "arn",
                ty: Type::String,
                description: "The KMS key ARN (not an alias ARN).",
                allow_null: false,
            }],
            returns: return_type(),
        }
    }

    fn call(&self, args: Vec<Value>) -> Result<Value, FunctionError> {
        let arn = args.first().and_then(Value::as_str).unwrap_or_default();
        let k = ids::parse_key_arn(arn).map_err(|e| FunctionError::at(0, e.0))?;
        Ok(Value::object([
            ("partition", Value::string(k.partition.as_str())),
            ("region", Value::string(k.region)),
            ("account_id", Value::string(k.account_id)),
            ("key_id", Value::string(k.key_id)),
            ("multi_region", Value::Bool(k.multi_region)),
        ]))
    }
}
