//! `provider::cmk::key_features(data_type)`: which key features protect a kind of data.

use crate::rules::DataType;
use crate::tfplugin::{Function, FunctionDef, FunctionError, Param, Type, Value};

pub struct KeyFeatures;

impl Function for KeyFeatures {
    fn name(&self) -> &'static str {
        "key_features"
    }

    fn definition(&self) -> FunctionDef {
        FunctionDef {
            summary: "The customer-managed key features that protect a kind of Databricks data",
            description: "Returns the key features (`MANAGED_SERVICES`, `STORAGE`) that protect the given data type, from the catalog of Databricks' customer-managed key documentation: `[\"STORAGE\"]` for `dbfs_root`, `[\"MANAGED_SERVICES\"]` for `secrets`, both for `interactive_notebook_results`, and `[]` for data no customer-managed key can protect, such as `model_serving_image`.",
            params: vec![Param {
                name: "data_type",
                ty: Type::String,
                description: "A canonical data type name, such as `dbfs_root`, `secrets` or `ebs_volumes`.",
                allow_null: false,
            }],
            returns: Type::list(Type::String),
        }
    }

    fn call(&self, args: Vec<Value>) -> Result<Value, FunctionError> {
        let name = args.first().and_then(Value::as_str).unwrap_or_default();
        let dt = DataType::parse(name).ok_or_else(|| {
            FunctionError::at(
                0,
                format!(
                    "unknown data type {name:?}; valid data types: {}",
                    DataType::valid_names()
                ),
            )
        })?;
        Ok(Value::List(
            dt.key_features()
                .iter()
                .map(|f| Value::string(f.as_str()))
                .collect(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_from_the_catalog_and_lists_valid_names_on_error() {
        let f = KeyFeatures;
        assert_eq!(
            f.call(vec![Value::string("interactive_notebook_results")])
                .unwrap(),
            Value::List(vec![
                Value::string("MANAGED_SERVICES"),
                Value::string("STORAGE")
            ])
        );
        assert_eq!(
            f.call(vec![Value::string("model_serving_image")]).unwrap(),
            Value::List(vec![])
        );
        let e = f.call(vec![Value::string("dbfs")]).unwrap_err();
        assert_eq!(e.argument, Some(0));
        assert!(
            e.text.contains("dbfs_root") && e.text.contains("unknown data type \"dbfs\""),
            "{}",
            e.text
        );
    }
}
