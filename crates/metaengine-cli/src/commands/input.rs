//! Reading JSON documents from a file or stdin; unreadable input is refused through the registry
//! so that it leaves a failure row in the audit trail like any other refusal.

use std::io::Read;
use std::path::PathBuf;

use metaengine_runtime::RegistryError;
use metaengine_store::EventType;
use serde_json::Value;

use super::Context;

/// Reads and parses a JSON document from `file` (`-` or `None`: stdin). On failure, records a
/// failure audit row of `event` for `resource` and returns the error.
pub async fn read_json(
    ctx: &Context,
    file: Option<&PathBuf>,
    event: EventType,
    resource: &str,
    details: Value,
) -> anyhow::Result<Value> {
    let (source, text) = match read_text(file) {
        Ok(read) => read,
        Err(message) => return Err(refuse(ctx, event, resource, details, message).await),
    };
    match serde_json::from_str::<Value>(&text) {
        Ok(doc) => Ok(doc),
        Err(e) => {
            let message = format!(
                "{source} is not valid JSON: {} at line {}, column {}",
                strip_position(&e.to_string()),
                e.line(),
                e.column()
            );
            Err(refuse(ctx, event, resource, details, message).await)
        }
    }
}

async fn refuse(
    ctx: &Context,
    event: EventType,
    resource: &str,
    details: Value,
    message: String,
) -> anyhow::Error {
    let error = RegistryError::invalid("", message);
    ctx.services
        .registry
        .reject(&ctx.actor, event, resource, details, error)
        .await
        .into()
}

pub fn read_text(file: Option<&PathBuf>) -> Result<(String, String), String> {
    match file {
        Some(path) if path.as_os_str() != "-" => {
            let source = format!("`{}`", path.display());
            std::fs::read_to_string(path)
                .map(|text| (source.clone(), text))
                .map_err(|e| format!("cannot read {source}: {e}"))
        }
        _ => {
            let mut text = String::new();
            std::io::stdin()
                .read_to_string(&mut text)
                .map_err(|e| format!("cannot read stdin: {e}"))?;
            Ok(("stdin".to_owned(), text))
        }
    }
}

/// serde_json appends " at line L column C"; we say it our way.
pub fn strip_position(message: &str) -> &str {
    message.split(" at line ").next().unwrap_or(message)
}

/// A schema document, or the HTTP body shape `{ "version": …, "schema": { … } }`.
pub fn schema_of(doc: Value) -> Value {
    match doc {
        Value::Object(mut map) if !map.contains_key("fields") && map.contains_key("schema") => {
            map.remove("schema").unwrap_or(Value::Null)
        }
        other => other,
    }
}
