//! JSON Schemas of the contract, generated from the Rust types with schemars.
//! The committed copies in `src/contract/schemas/` are what app teams read;
//! a test fails when they drift from the types (`kendali schemas --write` updates them).

use std::path::{Path, PathBuf};

use schemars::{generate::SchemaSettings, JsonSchema};

use super::messages::*;

fn schema_of<T: JsonSchema>(kind: MessageKind) -> serde_json::Value {
    let generator = SchemaSettings::draft2020_12().into_generator();
    let mut schema = generator.into_root_schema_for::<T>();
    schema.insert(
        "$id".into(),
        format!(
            "https://kendali.local/contract/v1/{}.schema.json",
            kind.as_str()
        )
        .into(),
    );
    schema.to_value()
}

/// The schema of one message kind.
pub fn schema(kind: MessageKind) -> serde_json::Value {
    match kind {
        MessageKind::IntersectionInfo => schema_of::<IntersectionInfo>(kind),
        MessageKind::IntersectionState => schema_of::<IntersectionState>(kind),
        MessageKind::Command => schema_of::<Command>(kind),
        MessageKind::CommandAck => schema_of::<CommandAck>(kind),
        MessageKind::CallEvent => schema_of::<CallEvent>(kind),
        MessageKind::UnitStatus => schema_of::<UnitStatus>(kind),
        MessageKind::UnitAssignment => schema_of::<UnitAssignment>(kind),
        MessageKind::AppEvent => schema_of::<AppEvent>(kind),
        MessageKind::KpiSample => schema_of::<KpiSample>(kind),
        MessageKind::Alert => schema_of::<super::Alert>(kind),
    }
}

/// The schema as committed: pretty JSON with a trailing newline.
pub fn schema_text(kind: MessageKind) -> String {
    let mut s =
        serde_json::to_string_pretty(&schema(kind)).expect("a JSON value always serialises");
    s.push('\n');
    s
}

/// Where the committed schemas live, relative to the repository root.
pub fn schema_dir(root: &Path) -> PathBuf {
    root.join("src/contract/schemas")
}

pub fn schema_file(root: &Path, kind: MessageKind) -> PathBuf {
    schema_dir(root).join(format!("{}.schema.json", kind.as_str()))
}

/// Writes every schema; returns the files written.
pub fn write_all(root: &Path) -> std::io::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(schema_dir(root))?;
    MessageKind::ALL
        .into_iter()
        .map(|k| {
            let p = schema_file(root, k);
            std::fs::write(&p, schema_text(k))?;
            Ok(p)
        })
        .collect()
}
