//! Golden tests: every schema under `tests/schemas/passing` must validate, every one under
//! `tests/schemas/failing` must not; the typed schema with its hash, or the list of problems, is
//! snapshotted. The entity is named after the file (`every_type.json` → `EveryType`); the entities
//! `Customer` and `Product` exist.

#![expect(
    clippy::panic,
    clippy::expect_used,
    reason = "test helpers outside #[test] functions fail the test by panicking"
)]

use heck::ToUpperCamelCase;
use metaengine_core::hash::schema_hash;
use metaengine_core::{ValidationContext, validate_schema};
use serde_json::{Value, json};
use std::fs;
use std::path::{Path, PathBuf};

fn exists(name: &str) -> bool {
    ["Customer", "Product"].contains(&name)
}

/// The `.json` files of one case directory, sorted.
fn cases(kind: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/schemas")
        .join(kind);
    let mut files: Vec<PathBuf> = fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .map(|entry| entry.expect("directory entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no cases in {}", dir.display());
    files
}

/// Validates one case file; returns its stem and the snapshot value, and whether it was valid.
fn run(path: &Path) -> (String, Value, bool) {
    let stem = path
        .file_stem()
        .and_then(|s| s.to_str())
        .expect("file stem")
        .to_string();
    let text = fs::read_to_string(path).expect("readable case");
    let doc: Value = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()));
    let entity = stem.to_upper_camel_case();
    let ctx = ValidationContext {
        entity_name: Some(&entity),
        entity_exists: &exists,
    };
    match validate_schema(&doc, &ctx) {
        Ok(schema) => {
            let hash = schema_hash(&schema);
            (
                stem,
                json!({ "entity": entity, "hash": hash, "schema": schema }),
                true,
            )
        }
        Err(problems) => (stem, json!({ "entity": entity, "errors": problems }), false),
    }
}

fn snapshot_all(kind: &str, expect_valid: bool) {
    for path in cases(kind) {
        let (stem, snapshot, valid) = run(&path);
        assert_eq!(
            valid,
            expect_valid,
            "{}: {}",
            path.display(),
            serde_json::to_string_pretty(&snapshot).unwrap_or_default()
        );
        insta::with_settings!({
            snapshot_path => "schemas/snapshots",
            prepend_module_to_snapshot => false,
            input_file => &path,
        }, {
            insta::assert_json_snapshot!(format!("{kind}__{stem}"), snapshot);
        });
    }
}

#[test]
fn passing_schemas() {
    snapshot_all("passing", true);
}

#[test]
fn failing_schemas() {
    snapshot_all("failing", false);
}

#[test]
fn three_different_errors_give_three_problems() {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/schemas/failing/three_problems.json");
    let (_, snapshot, valid) = run(&path);
    assert!(!valid);
    assert_eq!(snapshot["errors"].as_array().map(Vec::len), Some(3));
}
