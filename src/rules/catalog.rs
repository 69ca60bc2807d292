//! The data-type catalog: which customer-managed key feature protects which
//! kind of Databricks data (the seed document's table). Canonical names are
//! those of `shared/notes/data-types.md`; every caller reads them here.

use std::fmt;

/// A Databricks customer-managed key feature ("use case" in the Account API).
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    serde::Serialize,
    serde::Deserialize,
    schemars::JsonSchema,
)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum KeyFeature {
    /// Control-plane data: notebooks, secrets, SQL queries, AI/BI dashboards.
    ManagedServices,
    /// The workspace storage bucket (DBFS root) and, optionally, cluster EBS volumes.
    Storage,
}

impl KeyFeature {
    pub const ALL: [KeyFeature; 2] = [KeyFeature::ManagedServices, KeyFeature::Storage];

    /// The Account API spelling (`MANAGED_SERVICES`, `STORAGE`).
    pub fn as_str(self) -> &'static str {
        match self {
            KeyFeature::ManagedServices => "MANAGED_SERVICES",
            KeyFeature::Storage => "STORAGE",
        }
    }

    pub fn parse(s: &str) -> Option<KeyFeature> {
        KeyFeature::ALL.into_iter().find(|f| f.as_str() == s)
    }

    /// The valid spellings, for error messages.
    pub fn valid_names() -> String {
        KeyFeature::ALL.map(KeyFeature::as_str).join(", ")
    }
}

impl fmt::Display for KeyFeature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a kind of data lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Location {
    ControlPlane,
    ServerlessComputePlane,
    ClassicComputePlane,
    WorkspaceStorageBucket,
    ControlPlaneAndWorkspaceStorageBucket,
    DatabricksManaged,
    CustomerOtherBuckets,
}

impl Location {
    pub fn as_str(self) -> &'static str {
        match self {
            Location::ControlPlane => "control plane",
            Location::ServerlessComputePlane => "serverless compute plane",
            Location::ClassicComputePlane => "classic compute plane",
            Location::WorkspaceStorageBucket => "workspace storage bucket",
            Location::ControlPlaneAndWorkspaceStorageBucket => {
                "control plane and workspace storage bucket"
            }
            Location::DatabricksManaged => "Databricks-managed",
            Location::CustomerOtherBuckets => "customer's other buckets",
        }
    }
}

/// A kind of data, by its canonical `data_type` name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum DataType {
    AiBiDashboards,
    Notebooks,
    GitCredentials,
    Secrets,
    SqlQueries,
    VectorSearch,
    EbsVolumes,
    DbfsRoot,
    JobResults,
    SqlResults,
    MlflowModels,
    DltTables,
    NotebookRevisions,
    InteractiveNotebookResults,
    ModelServingArtifacts,
    ModelServingImage,
    ServerlessComputeDisks,
    DbfsMounts,
}

/// One row of the catalog.
#[derive(Debug, Clone, Copy)]
pub struct DataTypeInfo {
    pub data_type: DataType,
    /// Canonical name, e.g. `dbfs_root`.
    pub name: &'static str,
    /// What the seed calls it.
    pub title: &'static str,
    pub location: Location,
    /// The key features that protect it; empty when no customer-managed key can.
    pub features: &'static [KeyFeature],
    /// Conditions and limits, in one sentence.
    pub condition: &'static str,
}

use KeyFeature::{ManagedServices as MS, Storage as ST};
use Location::*;

const fn row(
    data_type: DataType,
    name: &'static str,
    title: &'static str,
    location: Location,
    features: &'static [KeyFeature],
    condition: &'static str,
) -> DataTypeInfo {
    DataTypeInfo {
        data_type,
        name,
        title,
        location,
        features,
        condition,
    }
}

/// The catalog, in the order of the seed's table.
pub static CATALOG: [DataTypeInfo; 18] = [
    row(DataType::AiBiDashboards, "ai_bi_dashboards", "AI/BI dashboards", ControlPlane, &[MS],
        "only dashboards created after 2024-11-01 are encrypted with the customer-managed key"),
    row(DataType::Notebooks, "notebooks", "Notebook source and metadata", ControlPlane, &[MS],
        "notebook source and metadata"),
    row(DataType::GitCredentials, "git_credentials", "Git credentials", ControlPlane, &[MS],
        "personal access tokens and other credentials for Git folders"),
    row(DataType::Secrets, "secrets", "Secrets", ControlPlane, &[MS],
        "secrets stored through the secret manager APIs"),
    row(DataType::SqlQueries, "sql_queries", "Databricks SQL queries and query history", ControlPlane, &[MS],
        "Databricks SQL queries and query history"),
    row(DataType::VectorSearch, "vector_search", "Vector Search indexes and metadata", ServerlessComputePlane, &[MS],
        "indexes and metadata"),
    row(DataType::EbsVolumes, "ebs_volumes", "Remote EBS volumes of cluster nodes", ClassicComputePlane, &[ST],
        "optional (`reuse_key_for_cluster_volumes`); classic compute only, never serverless"),
    row(DataType::DbfsRoot, "dbfs_root", "DBFS root", WorkspaceStorageBucket, &[ST],
        "includes the FileStore area; not DBFS mounts"),
    row(DataType::JobResults, "job_results", "Job results", WorkspaceStorageBucket, &[ST],
        "stored in the workspace storage bucket"),
    row(DataType::SqlResults, "sql_results", "Databricks SQL query results", WorkspaceStorageBucket, &[ST],
        "also for serverless SQL"),
    row(DataType::MlflowModels, "mlflow_models", "MLflow Models", WorkspaceStorageBucket, &[ST],
        "stored in the workspace storage bucket"),
    row(DataType::DltTables, "dlt_tables", "Delta Live Tables", WorkspaceStorageBucket, &[ST],
        "only when the path is in DBFS root, not a mount"),
    row(DataType::NotebookRevisions, "notebook_revisions", "Notebook revisions", WorkspaceStorageBucket, &[ST],
        "workspace system data"),
    row(DataType::InteractiveNotebookResults, "interactive_notebook_results", "Interactive notebook results",
        ControlPlaneAndWorkspaceStorageBucket, &[MS, ST],
        "both keys, unless all results are configured to be stored in the customer's account (then STORAGE)"),
    row(DataType::ModelServingArtifacts, "model_serving_artifacts", "Model Serving artifacts", WorkspaceStorageBucket, &[ST],
        "model artifacts and version metadata"),
    row(DataType::ModelServingImage, "model_serving_image", "Model Serving image", DatabricksManaged, &[],
        "model image and ephemeral serverless storage use Databricks-managed keys only"),
    row(DataType::ServerlessComputeDisks, "serverless_compute_disks", "Serverless compute disks", ServerlessComputePlane, &[],
        "short-lived disks, destroyed with the compute"),
    row(DataType::DbfsMounts, "dbfs_mounts", "DBFS mounts", CustomerOtherBuckets, &[],
        "use S3 encryption on those buckets; mounts are a legacy access pattern"),
];

impl DataType {
    pub fn info(self) -> &'static DataTypeInfo {
        CATALOG
            .iter()
            .find(|r| r.data_type == self)
            .expect("every DataType has a catalog row")
    }

    pub fn name(self) -> &'static str {
        self.info().name
    }

    pub fn all() -> impl Iterator<Item = DataType> {
        CATALOG.iter().map(|r| r.data_type)
    }

    /// Looks a canonical name up.
    pub fn parse(name: &str) -> Option<DataType> {
        CATALOG.iter().find(|r| r.name == name).map(|r| r.data_type)
    }

    /// The valid names, comma-separated, for error messages.
    pub fn valid_names() -> String {
        CATALOG
            .iter()
            .map(|r| r.name)
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The key features that protect this data type, in catalog order.
    pub fn key_features(self) -> &'static [KeyFeature] {
        self.info().features
    }
}

impl fmt::Display for DataType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_variant_has_exactly_one_row_and_a_unique_name() {
        let mut names = std::collections::BTreeSet::new();
        for r in &CATALOG {
            assert!(names.insert(r.name), "duplicate name {}", r.name);
            assert_eq!(
                CATALOG
                    .iter()
                    .filter(|x| x.data_type == r.data_type)
                    .count(),
                1
            );
            assert_eq!(DataType::parse(r.name), Some(r.data_type));
        }
        assert_eq!(names.len(), 18);
    }

    #[test]
    fn features_follow_the_seed_table() {
        assert_eq!(DataType::DbfsRoot.key_features(), &[KeyFeature::Storage]);
        assert_eq!(
            DataType::Secrets.key_features(),
            &[KeyFeature::ManagedServices]
        );
        assert_eq!(
            DataType::InteractiveNotebookResults.key_features(),
            &[KeyFeature::ManagedServices, KeyFeature::Storage]
        );
        assert!(DataType::ModelServingImage.key_features().is_empty());
        assert!(DataType::ServerlessComputeDisks.key_features().is_empty());
        assert!(DataType::DbfsMounts.key_features().is_empty());
        assert_eq!(DataType::parse("no_such"), None);
    }

    #[test]
    fn key_feature_spelling_round_trips() {
        for f in KeyFeature::ALL {
            assert_eq!(KeyFeature::parse(f.as_str()), Some(f));
        }
        assert_eq!(KeyFeature::parse("storage"), None);
    }
}
