//! A snapshot as files a person reviews in a pull request (SPEC §17):
//! `DIR/entities/<Entity>/entity.json` (description, active version),
//! `DIR/entities/<Entity>/versions/<version>.json` (the schema as stored) and `DIR/tenants.json`,
//! each pretty JSON with its keys sorted at every depth and a final newline, so that an export
//! of unchanged metadata rewrites the same bytes on either backend.

use std::cmp::Ordering;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{EntitySnapshot, Snapshot, TenantSnapshot, VersionSnapshot};

/// Why a snapshot directory could not be written or read.
#[derive(Debug, thiserror::Error)]
pub enum FilesError {
    /// A file or directory could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// A file is not the JSON its place asks for.
    #[error("{path}: {message}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
}

/// `entity.json`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct EntityFile {
    #[serde(default)]
    active_version: Option<String>,
    #[serde(default)]
    description: Option<String>,
}

fn io_error(path: &Path) -> impl FnOnce(io::Error) -> FilesError + '_ {
    move |source| FilesError::Io {
        path: path.to_owned(),
        source,
    }
}

/// `value` with the keys of every object sorted.
fn sorted(value: &Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            Value::Object(
                keys.into_iter()
                    .map(|k| (k.clone(), sorted(&map[k])))
                    .collect(),
            )
        }
        Value::Array(items) => Value::Array(items.iter().map(sorted).collect()),
        other => other.clone(),
    }
}

/// Pretty JSON of `value`, keys sorted, with a final newline.
pub fn pretty(value: &Value) -> String {
    let mut text = serde_json::to_string_pretty(&sorted(value)).unwrap_or_default();
    text.push('\n');
    text
}

fn write_json(path: &Path, value: &Value) -> Result<(), FilesError> {
    fs::write(path, pretty(value)).map_err(io_error(path))
}

/// Writes `snapshot` under `dir`, replacing `dir/entities` and `dir/tenants.json` (other files
/// of `dir` stay).
pub fn write(snapshot: &Snapshot, dir: &Path) -> Result<(), FilesError> {
    let entities = dir.join("entities");
    if entities.exists() {
        fs::remove_dir_all(&entities).map_err(io_error(&entities))?;
    }
    for entity in &snapshot.entities {
        let versions = entities.join(&entity.name).join("versions");
        fs::create_dir_all(&versions).map_err(io_error(&versions))?;
        let file = EntityFile {
            active_version: entity.active_version.clone(),
            description: entity.description.clone(),
        };
        let value = serde_json::to_value(&file).unwrap_or(Value::Null);
        write_json(&entities.join(&entity.name).join("entity.json"), &value)?;
        for v in &entity.versions {
            write_json(&versions.join(format!("{}.json", v.version)), &v.schema)?;
        }
    }
    fs::create_dir_all(dir).map_err(io_error(dir))?;
    let tenants = serde_json::to_value(&snapshot.tenants).unwrap_or(Value::Null);
    write_json(&dir.join("tenants.json"), &tenants)
}

fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<T, FilesError> {
    let text = fs::read_to_string(path).map_err(io_error(path))?;
    serde_json::from_str(&text).map_err(|e| FilesError::Invalid {
        path: path.to_owned(),
        message: e.to_string(),
    })
}

/// The names in `dir` (sorted), files or directories as asked.
fn names(dir: &Path, directories: bool) -> Result<Vec<String>, FilesError> {
    let mut names = Vec::new();
    for entry in fs::read_dir(dir).map_err(io_error(dir))? {
        let entry = entry.map_err(io_error(dir))?;
        let is_dir = entry.file_type().map_err(io_error(dir))?.is_dir();
        if is_dir == directories
            && let Some(name) = entry.file_name().to_str()
        {
            names.push(name.to_owned());
        }
    }
    names.sort();
    Ok(names)
}

/// Compares version labels with their numbers as numbers (`v2` before `v10`, `1.9.0` before
/// `1.10.0`), so that versions are created in the order their labels count.
fn by_number(a: &str, b: &str) -> Ordering {
    fn parts(s: &str) -> Vec<Result<u64, &str>> {
        let mut out = Vec::new();
        let mut rest = s;
        while !rest.is_empty() {
            let digits = rest
                .find(|c: char| !c.is_ascii_digit())
                .unwrap_or(rest.len());
            let (part, tail) = if digits > 0 {
                rest.split_at(digits)
            } else {
                rest.split_at(
                    rest.find(|c: char| c.is_ascii_digit())
                        .unwrap_or(rest.len()),
                )
            };
            out.push(part.parse::<u64>().map_err(|_| part));
            rest = tail;
        }
        out
    }
    parts(a).cmp(&parts(b)).then_with(|| a.cmp(b))
}

/// Reads the snapshot under `dir`.
pub fn read(dir: &Path) -> Result<Snapshot, FilesError> {
    let root = dir.join("entities");
    let mut entities = Vec::new();
    if root.exists() {
        for name in names(&root, true)? {
            let file: EntityFile = read_json(&root.join(&name).join("entity.json"))?;
            let versions_dir = root.join(&name).join("versions");
            let mut labels: Vec<String> = if versions_dir.exists() {
                names(&versions_dir, false)?
                    .into_iter()
                    .filter_map(|f| f.strip_suffix(".json").map(str::to_owned))
                    .collect()
            } else {
                Vec::new()
            };
            labels.sort_by(|a, b| by_number(a, b));
            let mut versions = Vec::with_capacity(labels.len());
            for version in labels {
                let schema = read_json(&versions_dir.join(format!("{version}.json")))?;
                versions.push(VersionSnapshot { version, schema });
            }
            entities.push(EntitySnapshot {
                name,
                description: file.description,
                active_version: file.active_version,
                versions,
            });
        }
    }
    let tenants_file = dir.join("tenants.json");
    let tenants: Vec<TenantSnapshot> = if tenants_file.exists() {
        read_json(&tenants_file)?
    } else {
        Vec::new()
    };
    if !root.exists() && !tenants_file.exists() {
        return Err(FilesError::Invalid {
            path: dir.to_owned(),
            message: "not a snapshot: no `entities` directory and no `tenants.json`".to_owned(),
        });
    }
    Ok(Snapshot { entities, tenants })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_sort_by_their_numbers() {
        let mut labels = vec!["v10", "v2", "v1", "1.10.0", "1.9.0"];
        labels.sort_by(|a, b| by_number(a, b));
        assert_eq!(labels, ["1.9.0", "1.10.0", "v1", "v2", "v10"]);
    }

    #[test]
    fn pretty_sorts_keys_at_every_depth() {
        let value = serde_json::json!({ "b": 1, "a": { "z": [ { "y": 1, "x": 2 } ], "c": null } });
        assert_eq!(
            pretty(&value),
            "{\n  \"a\": {\n    \"c\": null,\n    \"z\": [\n      {\n        \"x\": 2,\n        \"y\": 1\n      }\n    ]\n  },\n  \"b\": 1\n}\n"
        );
    }
}
