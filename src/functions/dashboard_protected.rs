//! `provider::cmk::dashboard_protected(create_time)`: whether an AI/BI
//! dashboard created at that time is encrypted with the managed-services key.

use crate::rules::facts::{created_on_or_before_cutoff, DASHBOARD_CUTOFF};
use crate::tfplugin::{Function, FunctionDef, FunctionError, Param, Type, Value};

pub struct DashboardProtected;

impl Function for DashboardProtected {
    fn name(&self) -> &'static str {
        "dashboard_protected"
    }

    fn definition(&self) -> FunctionDef {
        FunctionDef {
            summary: "Whether an AI/BI dashboard created at a given time is encrypted with the managed-services key",
            description: "Returns `true` when an AI/BI (Lakeview) dashboard created at `create_time` is encrypted with the workspace's customer-managed key for managed services (when the workspace has one), and `false` for a dashboard created on or before 2024-11-01 (UTC): Databricks notes that only AI/BI dashboards created after November 1, 2024 are encrypted with, and compatible with, customer-managed keys (re-create older ones to have them encrypted; rule CMK011). The cutoff is the rule engine's, the same one `cmk_encryption_coverage` and the `cmk_workspace_binding` dashboard warning use. `create_time` is the dashboard's `create_time` as the Lakeview API returns it (RFC 3339).",
            params: vec![Param {
                name: "create_time",
                ty: Type::String,
                description: "The dashboard's creation time, RFC 3339 with a time zone, such as `2024-11-05T10:00:00Z`.",
                allow_null: false,
            }],
            returns: Type::Bool,
        }
    }

    fn call(&self, args: Vec<Value>) -> Result<Value, FunctionError> {
        let t = args.first().and_then(Value::as_str).unwrap_or_default();
        match created_on_or_before_cutoff(t) {
            Ok(before) => Ok(Value::Bool(!before)),
            Err(e) => Err(FunctionError::at(
                0,
                format!(
                    "create_time: {e}; give the dashboard's create_time with its time zone (the cutoff is the end of {DASHBOARD_CUTOFF}, UTC)"
                ),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn after_the_cutoff_day_is_protected() {
        let f = DashboardProtected;
        let call = |t: &str| f.call(vec![Value::string(t)]);
        assert_eq!(call("2024-11-01T23:59:59Z").unwrap(), Value::Bool(false));
        assert_eq!(call("2024-11-02T00:00:00Z").unwrap(), Value::Bool(true));
        // 2024-11-01 20:00 in New York is 2024-11-02 01:00 UTC.
        assert_eq!(
            call("2024-11-01T20:00:00-05:00").unwrap(),
            Value::Bool(true)
        );
        assert_eq!(call("2023-06-01T09:00:00Z").unwrap(), Value::Bool(false));
        let e = call("2024-11-05").unwrap_err();
        assert_eq!(e.argument, Some(0));
        assert!(
            e.text
                .contains("\"2024-11-05\" is not an RFC 3339 timestamp")
                && e.text.contains("2024-11-01"),
            "{}",
            e.text
        );
    }
}
